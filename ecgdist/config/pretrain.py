"""A pre-training run's config: its sections, and the downstream probes it runs while it trains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ecgdist.config.benchmarks import SPLIT_FOLDS, BenchmarkSection
from ecgdist.config.loading import ConfigError, check_range
from ecgdist.config.sections import (
    CheckpointSection,
    LoggingSection,
    ModelSection,
    PretrainDataSection,
    PretrainSlurmSection,
    RunSection,
    TrainSection,
    corpus_list,
)


@dataclass
class ProbeBenchmarkSection(BenchmarkSection):
    """A benchmark a pre-training run probes; its corpus may be left empty for ``data.corpus`` (one corpus)."""

    KEY: ClassVar[str] = "probe.benchmarks"


@dataclass
class ProbeSection:
    """Downstream probes while pre-training runs (ecgdist/pretrain/probe.py): every ``every_steps``
    steps and at the last, a linear read-out of the current model's frozen features, fitted on each
    task's ``train_folds`` and scored on its ``score_folds``. The test fold is never read."""

    benchmarks: list[ProbeBenchmarkSection] = field(default_factory=list)  # empty: no probes
    every_steps: int = 5000  # 0: off; 5000 keeps the probe under 5 % of a GPU run (docs/probes.md)
    train_folds: list[int] = field(default_factory=lambda: list(SPLIT_FOLDS["train"]))
    score_folds: list[int] = field(default_factory=lambda: list(SPLIT_FOLDS["val"]))
    c: float = 1.0  # inverse L2 strength of the logistic regressions, fixed: no choice is made on the scored fold
    batch_size: int = 128  # records per forward pass on each rank

    def __post_init__(self) -> None:
        check_range("probe.every_steps", self.every_steps, 0)
        check_range("probe.batch_size", self.batch_size, 1)
        check_range("probe.c", self.c, 1e-6)
        for key in ("train_folds", "score_folds"):
            folds = getattr(self, key)
            test = sorted(set(folds) & set(SPLIT_FOLDS["test"]))
            if test:
                raise ConfigError(f"config key 'probe.{key}' has fold {test[0]}, the test fold: a probe during "
                                  "pre-training must never read it (it is kept for the fine-tunes' final scores)")
            if not folds:
                raise ConfigError(f"config key 'probe.{key}' is empty")
        if set(self.train_folds) & set(self.score_folds):
            raise ConfigError(f"config keys 'probe.train_folds' and 'probe.score_folds' share folds "
                              f"{sorted(set(self.train_folds) & set(self.score_folds))}: a probe scored on records "
                              "it was fitted on says nothing")
        for benchmark in self.benchmarks:
            if not benchmark.tasks:
                raise ConfigError(f"config key 'probe.benchmarks ({benchmark.name}) tasks' is empty: name the tasks "
                                  "to probe (each costs a fit at every probe)")
        names = [b.name for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ConfigError(f"config key 'probe.benchmarks': names {names} must be distinct")

    @property
    def active(self) -> bool:
        """Whether the run probes: benchmarks named and an interval (the tiny configs name theirs, interval 0)."""
        return bool(self.benchmarks) and self.every_steps > 0

    def metrics(self) -> list[str]:
        """Every scalar a probe writes, ``probe/<benchmark>/<task>/<auroc|auprc>``."""
        return [f"probe/{b.name}/{task}/{metric}" for b in self.benchmarks for task in b.tasks
                for metric in ("auroc", "auprc")]


@dataclass
class PretrainConfig:
    run: RunSection = field(default_factory=RunSection)
    data: PretrainDataSection = field(default_factory=PretrainDataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    probe: ProbeSection = field(default_factory=ProbeSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    deepspeed: str = "configs/deepspeed/zero2.json"
    slurm: PretrainSlurmSection = field(default_factory=PretrainSlurmSection)

    def __post_init__(self) -> None:
        best = self.checkpoint.keep_best
        if best and best not in self.probe.metrics():
            raise ConfigError(f"config key 'checkpoint.keep_best' is {best!r}; it names a probe metric: "
                              f"{', '.join(self.probe.metrics()) or 'none (probe.benchmarks is empty)'}")
        if best and not self.probe.every_steps:
            raise ConfigError("config key 'checkpoint.keep_best' is set but probe.every_steps=0 runs no probe")
        if self.probe.active and any(not b.corpus for b in self.probe.benchmarks) \
                and len(corpus_list(self.data.corpus)) != 1:
            raise ConfigError("config key 'probe.benchmarks' has a benchmark without a corpus, which means "
                              "data.corpus, but data.corpus is not one corpus: name the benchmark's corpus")
