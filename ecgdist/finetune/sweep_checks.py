"""What must hold before a sweep submits anything: every file it names exists and fits its
benchmark, every backbone's weights may be used on each corpus, and a sweep folder keeps the
config and the weights its results came from.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecgdist.config import ConfigError, FinetuneConfig, load_config, to_dict
from ecgdist.data.dataset import ShardCorpus
from ecgdist.data.transforms import check_crop
from ecgdist.finetune.external import check_unseen, open_external
from ecgdist.finetune.job import WEIGHTS_RECORD, benchmark_of
from ecgdist.finetune.plan import BenchmarkRun, backbones, benchmark_runs
from ecgdist.finetune.provenance import pretraining_data, weights_sha256
from ecgdist.finetune.weights import check_weights
from ecgdist.models.hub import PREFIX as HUB_PREFIX
from ecgdist.tasks.benchmark import NoFolds, task_records, task_splits


def check_inputs(cfg: FinetuneConfig) -> None:
    """Files named by the config exist, every benchmark has its folds and tasks, and every backbone's
    weights may be used on each benchmark's corpus: fail here, not in a job."""
    needs_weights = any(s in ("baseline", "post_training", "linear", "linear_fit") for s in cfg.sweep.strategies)
    frozen = [s for s in ("linear", "linear_fit") if s in cfg.sweep.strategies]
    for run in benchmark_runs(cfg):
        name, bench, job_cfg = run.backbone, run.benchmark, run.cfg
        corpus = open_benchmark_corpus(run)
        tests = check_external_tests(run, corpus)
        key = f"sweep.backbones ({name}) weights" if name else "finetune.weights"
        weights = job_cfg.finetune.weights
        if weights and not weights.startswith(HUB_PREFIX) and not Path(weights).exists():
            raise ConfigError(f"config key '{key}': {weights} does not exist")
        if frozen and not weights:
            raise ConfigError(f"config key '{key}' is empty, but strategy {frozen[0]} evaluates pre-trained features")
        if needs_weights and not weights:
            print(f"note: {key} is empty: baseline and post_training start from random weights")
        if needs_weights and weights:
            try:
                _, extra = check_weights(job_cfg, corpus)
            except ConfigError as error:
                raise ConfigError(str(error).replace("config key 'finetune.weights'", f"config key '{key}'")) from None
            checked = pretraining_data(weights, extra, job_cfg.data.corpus, job_cfg.finetune.allow_overlap)
            print(f"pre-training data{f' of {name}' if name else ''} vs {bench or 'ptbxl'} folds 9-10: "
                  f"{checked['status']}: {checked['detail']}")
            for test, path in tests.items():
                checked = pretraining_data(weights, extra, path, job_cfg.finetune.allow_overlap, external=True)
                print(f"pre-training data{f' of {name}' if name else ''} vs {bench} external test set {test}: "
                      f"{checked['status']}: {checked['detail']}")


def open_benchmark_corpus(run: BenchmarkRun) -> ShardCorpus:
    """The run's corpus, checked: its manifest and shard sizes, a window that fits ``data.crop_samples``,
    the benchmark's tasks and tables, folds (its own or made), and records in each split of every task."""
    cfg, key = run.cfg, run.corpus_key
    try:
        corpus = ShardCorpus(cfg.data.corpus)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"config key '{key}': {error}") from None
    check_crop(cfg.data.crop_samples, corpus.manifest.recipe.samples, cfg.data.corpus)
    benchmark = benchmark_of(cfg, run.benchmark)
    if benchmark.kind == "ptbxl" and not (Path(cfg.data.corpus) / "scp_statements.csv").exists():
        raise ConfigError(f"config key '{key}': {cfg.data.corpus} has no scp_statements.csv (not a PTB-XL corpus)")
    where = f"sweep.benchmarks ({run.benchmark}) tasks" if run.benchmark else "sweep.tasks"
    for task in run.tasks:
        try:
            splits = task_splits(cfg.data.corpus, benchmark.kind, task, benchmark.classes, benchmark.mapping).splits
        except NoFolds as error:
            raise ConfigError(f"config key '{key}': {error}") from None
        except (OSError, ValueError) as error:
            raise ConfigError(f"config key '{where}': {error}") from None
        empty = [name for name, split in splits.items() if not len(split.indices)]
        if empty:
            raise ConfigError(f"config key '{where}': task {task} has no {' or '.join(empty)} records in "
                              f"{cfg.data.corpus} (train: folds 1-8, val: 9, test: 10)")
    return corpus


def check_external_tests(run: BenchmarkRun, corpus: ShardCorpus) -> dict[str, str]:
    """The run's external test sets ({name: corpus}), each made as its benchmark's corpus, without a record
    of that corpus's folds 1-9, and holding records of every task."""
    benchmark = benchmark_of(run.cfg, run.benchmark)
    for test, key in run.external_keys.items():
        path = benchmark.external[test]
        open_external(corpus, path, key)
        check_unseen(corpus.path, path, key)
        for task in run.tasks:
            try:
                records = task_records(path, benchmark.kind, task, benchmark.classes, benchmark.mapping)
            except (OSError, ValueError) as error:
                raise ConfigError(f"config key '{key}': {error}") from None
            if not len(records.rows):
                raise ConfigError(f"config key '{key}': {path} holds no record of task {task}")
    return dict(benchmark.external)


def check_same_sweep(cfg: FinetuneConfig, sweep_dir: Path) -> None:
    """A sweep folder's results belong to the config that made them: re-submitting with other
    settings would label old numbers with new ones. Adding tasks, strategies, fractions, seeds,
    backbones, benchmarks or external test sets extends the sweep; changing anything else, or
    dropping a test set its results hold, needs a new run.dir."""
    saved_path = sweep_dir / "config.yaml"
    if not saved_path.exists():
        return
    saved, now = to_dict(load_config(FinetuneConfig, saved_path)), to_dict(cfg)
    for d in (saved, now):
        d.pop("slurm"), d["data"].pop("workers")
        d["sweep"] = fixed_sweep_parts(d["sweep"])
    changed = [f"{section}.{key}" for section in now if section != "sweep" for key in now[section]
               if saved[section].get(key) != now[section][key]]
    changed += [f"sweep.{kind} ({name})" for kind, name in now["sweep"] if (kind, name) in saved["sweep"]
                and saved["sweep"][kind, name] != now["sweep"][kind, name]]
    dropped = [f"sweep.{kind} ({name})" for kind, name in saved["sweep"]
               if kind == "external" and (kind, name) not in now["sweep"]]
    if changed or dropped:
        differ = "; ".join(filter(None, [f"{', '.join(changed)} differ" * bool(changed),
                                         f"{', '.join(dropped)} dropped, whose rows its jobs hold" * bool(dropped)]))
        raise ConfigError(f"sweep folder {sweep_dir} holds results of another config ({differ}); "
                          "use a new run.dir for these settings")


def fixed_sweep_parts(sweep: dict) -> dict[tuple[str, str], dict | str]:
    """What of ``sweep.*`` a resubmission may not change: each backbone, each benchmark but its tasks, and
    the corpus of each external test set (one added later scores the finished jobs' models, untrained again)."""
    parts: dict[tuple[str, str], dict | str] = {}
    for b in sweep["backbones"]:
        parts["backbones", b["name"]] = {**b, "corpora": {k: v for k, v in b["corpora"].items() if "/" not in k}}
        parts.update({("external", f"{k} of {b['name']}"): v for k, v in b["corpora"].items() if "/" in k})
    for b in sweep.get("benchmarks", ()):
        parts["benchmarks", b["name"]] = {k: v for k, v in b.items() if k not in ("tasks", "external")}
        parts.update({("external", f"{b['name']}/{test}"): v for test, v in b.get("external", {}).items()})
    return parts


def backbone_weights(cfg: FinetuneConfig) -> dict[str, dict]:
    """{backbone: {"weights": path or Hub reference, "sha256": of the file}} for every backbone with weights."""
    return {name or cfg.model.name: {"weights": job_cfg.finetune.weights,
                                     "sha256": weights_sha256(job_cfg.finetune.weights)}
            for name, job_cfg in backbones(cfg) if job_cfg.finetune.weights}


def check_same_weights(cfg: FinetuneConfig, sweep_dir: Path) -> dict[str, dict]:
    """A row averages jobs of one model: weights replaced behind an unchanged path (a new seed
    added later would train on the new file) are refused. Returns the record to keep."""
    path = sweep_dir / WEIGHTS_RECORD
    saved = json.loads(path.read_text()) if path.exists() else {}
    now = backbone_weights(cfg)
    changed = [f"{name} ({entry['weights']}: sha256 {saved[name]['sha256'][:12]}... then, {entry['sha256'][:12]}... "
               "now)" for name, entry in now.items() if name in saved and saved[name] != entry]
    if changed:
        raise ConfigError(f"sweep folder {sweep_dir}: the weights of {', '.join(changed)} changed since its jobs "
                          "were submitted; their rows would average two models. Use a new run.dir")
    return {**saved, **now}
