"""External test sets: every record of a corpus from elsewhere (CODE-test for CODE-15 %), scored by
each of a benchmark's jobs after fold 10 with the weights fold 9 selected.

A test set must give the model the inputs its benchmark's corpus gives (rate, window, filter, leads),
and hold none of the records the job could learn from or be selected on (folds 1-9 of that
corpus), by content or identity: both are checked before a sweep submits and again in the
job. Its scores, targets and classes go to ``JOB/external/NAME/`` as fold 10's go to ``JOB/``, and
its metrics to result.json's ``external``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse

from ecgdist.config import SPLIT_FOLDS, BenchmarkSection, ConfigError, FinetuneConfig
from ecgdist.data.dataset import ShardCorpus
from ecgdist.data.index import FingerprintsMissing, read_index
from ecgdist.data.leakage import overlap_by_fold
from ecgdist.data.shards import INPUT_FIELDS
from ecgdist.finetune.provenance import no_weights, pretraining_data
from ecgdist.finetune.scoring import score_split
from ecgdist.tasks.benchmark import TaskSplit, task_records

EXTERNAL = "external"  # JOB/external/NAME: one test set's test_scores.npy, test_targets.npy, classes.json


def open_external(benchmark_corpus: ShardCorpus, path: str, key: str) -> ShardCorpus:
    """The test set's corpus, made as the benchmark's: a model fed other inputs would be scored on them."""
    try:
        corpus = ShardCorpus(path)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"config key '{key}': {error}") from None
    ours, theirs = benchmark_corpus.manifest.recipe.to_dict(), corpus.manifest.recipe.to_dict()
    differ = [f"{k} {theirs[k]} vs {ours[k]}" for k in (*INPUT_FIELDS, "leads") if theirs[k] != ours[k]]
    if differ:
        raise ConfigError(f"config key '{key}': {path} was made with other inputs than {benchmark_corpus.path} "
                          f"({'; '.join(differ)}): make it with that corpus's --rate, --seconds and --filter")
    return corpus


def check_unseen(benchmark_corpus: str | Path, path: str, key: str) -> None:
    """Refuse a test set holding any record of the benchmark corpus's folds 1-9 (what its jobs train
    and select on), found by content fingerprint or record identity."""
    learnt = SPLIT_FOLDS["train"] + SPLIT_FOLDS["val"]
    index = read_index(benchmark_corpus)
    rows = np.flatnonzero(np.isin(index.fold, learnt))
    try:
        fingerprints = np.unique(index.fingerprints(benchmark_corpus)[rows])
        overlap = overlap_by_fold(path, fingerprints, None, np.unique(index.identity[rows]))
    except FingerprintsMissing as error:
        raise ConfigError(f"config key '{key}': {error}") from None
    if overlap:
        count = sum(n for n, _ in overlap.values())
        examples = [i for _, ids in overlap.values() for i in ids][:3]
        raise ConfigError(f"config key '{key}': {count} records of {path} are records of folds 1-9 of "
                          f"{benchmark_corpus}, which its jobs train and select on (e.g. {', '.join(examples)}): "
                          "an external test set holds records no model of the sweep learnt from")


def external_split(path: str | Path, benchmark: BenchmarkSection, task: str, classes: list[str]) -> TaskSplit:
    """Every record of the task in the test set, its targets in the job's class order (a class the
    test set never holds is a column of negatives: it is left out of the scores, as on fold 10)."""
    records = task_records(path, benchmark.kind, task, benchmark.classes, benchmark.mapping)
    targets = records.targets[records.rows]
    column = {c: k for k, c in enumerate(records.classes)}
    none = sparse.csr_matrix((len(records.rows), 1), dtype=np.float32)
    ordered = sparse.hstack([targets[:, column[c]] if c in column else none for c in classes], format="csr")
    return TaskSplit(records.rows, ordered, records.record_ids[records.rows])


def unscored_tests(benchmark: BenchmarkSection, result: dict) -> list[str]:
    """The benchmark's external test sets a finished job's result holds no figures for (named after it ran)."""
    return [name for name in benchmark.external if name not in result.get(EXTERNAL, {})]


def score_external(cfg: FinetuneConfig, spec, job_dir: Path, model, loaders, corpus: ShardCorpus,
                   backbone: dict | None, names: list[str] | None = None) -> dict:
    """Each external test set of the benchmark (``names`` of them), every record of it, with the
    selected weights: {name: its corpus, records, what pre-training saw of it, metrics}. ``spec``: the
    job's ``JobSpec``; ``loaders``: its ``Loaders``; ``backbone``: its weights' record of their training data."""
    scored = {}
    for name, path in loaders.benchmark.external.items():
        if names is not None and name not in names:
            continue
        key = loaders.benchmark.external_key(name)
        test = open_external(corpus, path, key)
        check_unseen(corpus.path, path, key)
        split = external_split(path, loaders.benchmark, spec.task, loaders.classes)
        pretraining = no_weights() if backbone is None else \
            pretraining_data(cfg.finetune.weights, {"provenance": backbone or None}, path, cfg.finetune.allow_overlap,
                             external=True)
        metrics, _, _ = score_split(job_dir / EXTERNAL / name, model, loaders.evaluation_loader(test, split),
                                    loaders.classes, cfg.finetune.bootstrap, spec.seed)
        scored[name] = {"corpus": path, "records": len(split.indices), "pretraining_data": pretraining, **metrics}
    return scored
