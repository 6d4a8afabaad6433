"""A fine-tune sweep's config: the recipe every job follows, the backbones it compares (each with
its authors' recipe) and the benchmarks, strategies, label fractions and seeds it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ecgdist.config.benchmarks import PTBXL_TASKS, BenchmarkSection
from ecgdist.config.loading import ConfigError, check_choice, check_range
from ecgdist.config.sections import DataSection, FinetuneSlurmSection, LoggingSection, ModelSection, SweepRunSection
from ecgdist.safe_load import PLAIN_DATA_TYPES, refused_types

STRATEGIES = ("baseline", "post_training", "scratch", "linear", "linear_fit")


@dataclass
class FinetuneSection:
    weights: str = ""  # pre-trained weights (released ECGFounder format or ecgdist export); "" = none
    keep_head: bool = False  # keep a pre-trained head of the task's shape (default: always a fresh head)
    allow_overlap: bool = False  # run with weights pre-trained on folds 9/10 of this corpus (rows are marked)
    allow_recipe_mismatch: bool = False  # run with weights trained on another rate, filter or normalisation (marked)
    trusted_types: list[str] = field(default_factory=list)  # classes (module.Class) a weights file may hold
    # epochs, batch_size, lr, weight_decay, schedule and plateau_*: the released ECGFounder fine-tune
    # (its MIMIC_finetune_template.py: 30 epochs, batch 256, Adam 5e-5, weight decay 1e-5)
    epochs: int = 30
    batch_size: int = 256
    lr: float = 5e-5
    weight_decay: float = 1e-5
    optimizer: str = "adam"  # adam: weight decay on every parameter (released ECGFounder) | adamw: not on norms, biases (MAE)
    schedule: str = "plateau"  # plateau: ReduceLROnPlateau on validation AUROC (released) | cosine: warm-up, cosine (MAE)
    warmup_epochs: int = 0  # cosine: linear warm-up over this many epochs of each stage
    plateau_patience: int = 10  # ReduceLROnPlateau (mode max) on validation macro AUROC, as released
    plateau_factor: float = 0.1
    # post_training: stage 1 trains the head on the frozen backbone, stage 2 everything
    match_epochs: bool = False  # baseline trains probe_epochs + epochs, as many as post_training in all
    linear_probe: bool = True
    probe_epochs: int = 5
    probe_lr: float = 1e-3
    drop_path: float = 0.1  # post_training's stochastic depth in stage 2
    baseline_drop_path: float = 0.0  # the baseline's (and scratch's) own; post_training's drop_path must exceed it
    layer_decay: float = 1.0  # 1.0 = off; part of a backbone's recipe: the full stage of every strategy but scratch
    ema_decay: float = 0.0  # 0 = off; else evaluate an exponential moving average of the weights
    bootstrap: int = 1000  # test-record resamples for the 90 % intervals and paired differences

    def __post_init__(self) -> None:
        check_range("finetune.epochs", self.epochs, 1)
        check_range("finetune.probe_epochs", self.probe_epochs, 0)
        check_range("finetune.drop_path", self.drop_path, 0.0, 0.9)
        check_range("finetune.baseline_drop_path", self.baseline_drop_path, 0.0, 0.9)
        if self.baseline_drop_path and self.drop_path <= self.baseline_drop_path:
            raise ConfigError(f"config key 'finetune.drop_path' is {self.drop_path}: post_training adds stochastic depth "
                              f"to the baseline's, so it must exceed finetune.baseline_drop_path={self.baseline_drop_path}")
        check_choice("finetune.optimizer", self.optimizer, ["adam", "adamw"])
        check_choice("finetune.schedule", self.schedule, ["plateau", "cosine"])
        check_range("finetune.warmup_epochs", self.warmup_epochs, 0)
        check_range("finetune.ema_decay", self.ema_decay, 0.0, 0.99999)
        check_range("finetune.layer_decay", self.layer_decay, 0.0, 1.0)
        for key in ("lr", "probe_lr", "weight_decay", "plateau_factor"):
            check_range(f"finetune.{key}", getattr(self, key), 0.0)
        check_range("finetune.batch_size", self.batch_size, 1)
        if refused_types(self.trusted_types):
            raise ConfigError(f"config key 'finetune.trusted_types' has {refused_types(self.trusted_types)}: only these "
                              f"plain-data classes can be trusted: {', '.join(PLAIN_DATA_TYPES)} (anything else a "
                              "pickle names can run code when the file loads)")


@dataclass
class BackboneSection:
    """One pre-trained model a sweep fine-tunes: its label in the table, weights and architecture, and
    what its authors fine-tune it with: its own corpus (the same records made with the input recipe
    it was trained on) and any ``finetune`` keys it changes."""

    name: str = ""
    weights: str = ""
    model: ModelSection = field(default_factory=ModelSection)
    corpus: str = ""  # "": data.corpus
    # benchmark name (or benchmark/external test set name): its corpus made with this backbone's recipe
    corpora: dict[str, str] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)  # finetune.* keys this backbone's jobs change

    def __post_init__(self) -> None:
        self.model.check_for_finetuning(f"sweep.backbones ({self.name}) model")
        valid = [f.name for f in fields(FinetuneSection)]
        unknown = [key for key in self.finetune if key not in valid or key == "weights"]
        if unknown:
            raise ConfigError(f"config key 'sweep.backbones ({self.name}) finetune' has {', '.join(unknown)}; valid "
                              f"keys: {', '.join(k for k in valid if k != 'weights')} (weights is the backbone's own key)")


@dataclass
class SweepSection:
    # Empty: one backbone, ``model`` with ``finetune.weights``. Else every job runs once per backbone.
    backbones: list[BackboneSection] = field(default_factory=list)
    tasks: list[str] = field(default_factory=lambda: list(PTBXL_TASKS))  # PTB-XL tasks on data.corpus ([]: none)
    benchmarks: list[BenchmarkSection] = field(default_factory=list)  # further benchmarks, each on its own corpus
    strategies: list[str] = field(default_factory=lambda: ["baseline", "post_training"])
    fractions: list[float] = field(default_factory=lambda: [1.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])

    def __post_init__(self) -> None:
        for task in self.tasks:
            check_choice("sweep.tasks", task, PTBXL_TASKS)
        for strategy in self.strategies:
            check_choice("sweep.strategies", strategy, STRATEGIES)
        for fraction in self.fractions:
            check_range("sweep.fractions", fraction, 0.001, 1.0)
        names = [b.name for b in self.backbones]
        if any(not n or not n.replace("_", "").isalnum() for n in names) or len(set(names)) != len(names):
            raise ConfigError(f"config key 'sweep.backbones': names {names} must be distinct words "
                              "(letters, digits, _); they label jobs and table rows")
        benchmarks = [b.name for b in self.benchmarks]
        if len(set(benchmarks)) != len(benchmarks) or "ptbxl" in benchmarks and self.tasks:
            raise ConfigError(f"config key 'sweep.benchmarks': names {benchmarks} must be distinct, and not ptbxl "
                              "while sweep.tasks runs PTB-XL's tasks on data.corpus")
        known = benchmarks + [f"{b.name}/{name}" for b in self.benchmarks for name in b.external]
        for backbone in self.backbones:
            unknown = sorted(set(backbone.corpora) - set(known))
            if unknown:
                raise ConfigError(f"config key 'sweep.backbones ({backbone.name}) corpora' names {', '.join(unknown)}, "
                                  f"which sweep.benchmarks does not have ({', '.join(known) or 'none'})")
        if not self.tasks and not self.benchmarks:
            raise ConfigError("config key 'sweep.tasks' is empty and sweep.benchmarks names none: nothing to run")


@dataclass
class FinetuneConfig:
    run: SweepRunSection = field(default_factory=SweepRunSection)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    sweep: SweepSection = field(default_factory=SweepSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    slurm: FinetuneSlurmSection = field(default_factory=FinetuneSlurmSection)

    def __post_init__(self) -> None:
        self.model.check_for_finetuning("model")
        if "linear" in self.sweep.strategies and not (self.finetune.linear_probe and self.finetune.probe_epochs):
            raise ConfigError("config key 'sweep.strategies' has linear, which trains the head for finetune.probe_epochs "
                              f"epochs, but finetune.probe_epochs={self.finetune.probe_epochs} and finetune.linear_probe="
                              f"{str(self.finetune.linear_probe).lower()}")
