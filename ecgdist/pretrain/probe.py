"""Downstream probes while pre-training runs: what the representation is worth, step by step.

The recipe is fixed, so values compare across steps and runs. Every ``probe.every_steps``
steps and at the last, each probe record's window from offset 0 (cropped and normalised as
pre-training's validation sees it) goes through the current model in eval mode and the
engine's compute precision; its pooled features (``models.pooled_features``: Net1D's mean
over time, the ViT's class token, an autoencoder's encoder) feed one logistic regression
per class (tasks/linear_fit.py, ``C = probe.c``) fitted on the task's training folds and
scored on its score fold: macro AUROC and AUPRC. The test fold is never read (the config
refuses it), and no record of the score fold may be a pre-training record (pretrain/data.py).

Features are computed on every rank over disjoint contiguous parts with the same number of
batches (ZeRO-3's forwards are collective), gathered on rank 0, which fits once; the values
are broadcast, so every rank takes the same decision about keeping the best checkpoint. The
history (step, values, cost) is part of every checkpoint: a resumed run rewrites
``probe.jsonl`` from it and never probes a step twice.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from ecgdist.config import ConfigError, PretrainConfig, ProbeSection, corpus_list, resolve_path
from ecgdist.data.dataset import ShardDataset, keep_batch
from ecgdist.data.shards import INPUT_FIELDS, read_manifest
from ecgdist.data.transforms import Transform
from ecgdist.dist import from_rank0, gather_to_rank0
from ecgdist.files import atomic_write_text
from ecgdist.models import pooled_features
from ecgdist.pretrain.engine_interface import TrainingEngine, on_engine
from ecgdist.tasks.benchmark import task_splits
from ecgdist.tasks.linear_fit import fit_scores
from ecgdist.tasks.metrics import macro_auprc, macro_auroc
from ecgdist.tensorboard_log import NullLogger

log = logging.getLogger("ecgdist.pretrain")
HISTORY_FILE = "probe.jsonl"
Features = Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]


@dataclass
class ProbeTask:
    name: str  # probe/<benchmark>/<task>
    train: np.ndarray  # positions in the probe set's records
    score: np.ndarray
    train_targets: np.ndarray  # (n, K) 0/1
    score_targets: np.ndarray


@dataclass
class ProbeSet:
    """One benchmark's corpus: the records its tasks read (training and score folds only), once."""

    name: str
    corpus: Path
    dataset: ShardDataset
    tasks: list[ProbeTask]


def probe_corpus(cfg: PretrainConfig, corpus: str) -> Path:
    return resolve_path(corpus or corpus_list(cfg.data.corpus)[0])


def open_probe_sets(cfg: PretrainConfig) -> list[ProbeSet]:
    """Every ``probe.benchmarks`` entry, checked as a config: its corpus, its recipe against
    pre-training's, each task's definition and non-empty splits."""
    p, d = cfg.probe, cfg.data
    if not p.active:
        return []
    trained_on = read_manifest(probe_corpus(cfg, "")).recipe.to_dict()
    sets = []
    for benchmark in p.benchmarks:
        key = f"probe.benchmarks ({benchmark.name})"
        corpus = probe_corpus(cfg, benchmark.corpus)
        try:
            made = read_manifest(corpus).recipe.to_dict()
        except FileNotFoundError as error:
            raise ConfigError(f"config key '{key} corpus': {error}") from None
        differ = [f"{k} {made[k]} vs {trained_on[k]}" for k in INPUT_FIELDS if made[k] != trained_on[k]]
        if differ:
            raise ConfigError(f"config key '{key} corpus': {corpus} was made with another recipe than data.corpus "
                              f"({'; '.join(differ)}): make it with pre-training's (python -m preprocess ...)")
        splits = {}
        for task in benchmark.tasks:
            try:
                splits[task] = task_splits(corpus, benchmark.kind, task, benchmark.classes, benchmark.mapping,
                                           {"train": tuple(p.train_folds), "score": tuple(p.score_folds)})
            except (FileNotFoundError, ValueError) as error:  # NoFolds, an unknown task, a bad mapping table
                raise ConfigError(f"config key '{key} tasks': {error}") from None
            empty = [name for name, split in splits[task].splits.items() if not len(split.indices)]
            if empty:
                raise ConfigError(f"config key '{key} tasks': task {task} has no {empty[0]} records in {corpus} "
                                  f"(probe.{empty[0]}_folds)")
        rows = np.unique(np.concatenate([s.indices for t in splits.values() for s in t.splits.values()]))
        tasks = [ProbeTask(f"probe/{benchmark.name}/{task}", *(np.searchsorted(rows, t.splits[s].indices)
                                                                for s in ("train", "score")),
                           *(t.splits[s].targets.toarray() for s in ("train", "score")))
                 for task, t in splits.items()]
        transform = Transform(d.crop_samples, False, d.normalize, tuple(d.leads))
        sets.append(ProbeSet(benchmark.name, corpus, ShardDataset(corpus, rows, transform=transform,
                                                                  device_transform=True), tasks))
    return sets


def rank_batches(records: int, batch_size: int, rank: int, world_size: int) -> tuple[list[list[int]], int]:
    """This rank's batches over its contiguous part, padded to the batch count of the largest part
    with repeats of its last batch (ZeRO-3's forwards are collective), and how many are its own."""
    parts = np.array_split(np.arange(records), world_size)
    rounds = max(math.ceil(len(part) / batch_size) for part in parts)
    own = [parts[rank][i:i + batch_size].tolist() for i in range(0, len(parts[rank]), batch_size)]
    filler = own[-1] if own else [0]
    return own + [filler] * (rounds - len(own)), len(own)


def features_on_ranks(engine: TrainingEngine, dataset: ShardDataset, batch_size: int, rank: int, world_size: int,
                      workers: int = 0, features: Features = pooled_features) -> np.ndarray | None:
    """(records, D) float32 features of ``dataset`` on rank 0 (None on the others), every rank having
    computed its part; the model in eval mode, the training RNG untouched."""
    batches, own = rank_batches(len(dataset), batch_size, rank, world_size)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=keep_batch, num_workers=workers)
    parts = []
    engine.eval()
    with torch.no_grad(), torch.random.fork_rng():
        for i, batch in enumerate(loader):
            values = features(engine.module, on_engine(batch, engine, dataset)["signal"])
            if i < own:
                parts.append(values.float().cpu().numpy())
    engine.train()
    gathered = gather_to_rank0(np.concatenate(parts) if parts else None)
    return None if gathered is None else np.concatenate([part for part in gathered if part is not None])


def score_tasks(probe_set: ProbeSet, features: np.ndarray, c: float) -> dict[str, float]:
    """{probe/<benchmark>/<task>/auroc | auprc}: each task's read-out fitted on its training records'
    features, scored on its score records'."""
    values = {}
    for task in probe_set.tasks:
        (scores,) = fit_scores(features[task.train], task.train_targets, [features[task.score]], c)
        values[f"{task.name}/auroc"] = macro_auroc(task.score_targets, scores)
        values[f"{task.name}/auprc"] = macro_auprc(task.score_targets, scores)
    return values


def read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


class Probes:
    """The probe sets of a run, their schedule and history; every method that computes is collective."""

    def __init__(self, sets: list[ProbeSet], section: ProbeSection, run_dir: Path, last_step: int, rank: int = 0,
                 world_size: int = 1, logger: NullLogger | None = None, workers: int = 0,
                 features: Features = pooled_features) -> None:
        self.sets, self.section, self.last_step = sets, section, last_step
        self.file = Path(run_dir) / HISTORY_FILE
        self.rank, self.world_size, self.workers, self.features = rank, world_size, workers, features
        self.logger = logger or NullLogger()
        self.history: list[dict] = []
        self.since = time.perf_counter()  # the start of the interval a probe's cost is a share of

    def restore(self, history: list[dict]) -> None:
        """The history a checkpoint holds (empty at a fresh start); rank 0 rewrites probe.jsonl to it, so
        values logged after that checkpoint by an attempt that then crashed are gone."""
        self.history = [dict(entry) for entry in history]
        if self.rank == 0:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.file, "".join(json.dumps(entry) + "\n" for entry in self.history))
        self.since = time.perf_counter()

    def due(self, step: int) -> bool:
        every = self.section.every_steps
        probed = {entry["step"] for entry in self.history}
        return bool(self.sets) and every > 0 and (step % every == 0 or step == self.last_step) and step not in probed

    def run(self, engine: TrainingEngine, step: int) -> dict[str, float]:
        """Probe the current weights: the values, equal on every rank; logged, written, kept in the history."""
        started = time.perf_counter()
        values: dict[str, float] = {}
        for probe_set in self.sets:
            features = features_on_ranks(engine, probe_set.dataset, self.section.batch_size, self.rank,
                                         self.world_size, self.workers, self.features)
            if self.rank == 0:
                values.update(score_tasks(probe_set, features, self.section.c))
        values = from_rank0(values)
        seconds = time.perf_counter() - started
        share = seconds / max(time.perf_counter() - self.since, 1e-9)
        self.since = time.perf_counter()
        entry = {"step": step, "values": values, "seconds": round(seconds, 3), "share": round(share, 4)}
        self.history.append(entry)
        self.logger.log({**values, "probe/seconds": seconds}, step)
        if self.rank == 0:
            with self.file.open("a") as f:
                f.write(json.dumps(entry) + "\n")
            shown = ", ".join(f"{name.removeprefix('probe/')} {value:.3f}" for name, value in values.items())
            log.info("probe at step %d: %s; %.1f s, %.1f %% of the interval's wall time", step, shown, seconds,
                     100 * share)
        return values

    def values_at(self, step: int) -> dict[str, float]:
        return next((entry["values"] for entry in self.history if entry["step"] == step), {})

    def is_best(self, step: int, metric: str) -> bool:
        """Whether ``step``'s value of ``metric`` beats every earlier one (NaN never does)."""
        value = self.values_at(step).get(metric, float("nan"))
        earlier = [e["values"].get(metric, float("nan")) for e in self.history if e["step"] < step]
        return math.isfinite(value) and all(not math.isfinite(v) or value > v for v in earlier)
