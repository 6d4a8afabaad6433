"""The sections both stages' configs are made of: run folder, data, model, training, checkpoints,
logging and what a job asks SLURM for. Each checks its own ranges in ``__post_init__``.
"""

from __future__ import annotations

import importlib
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from ecgdist.config.loading import ConfigError, check_choice, check_range
from ecgdist.leads import STANDARD_LEADS


@dataclass
class RunSection:
    dir: str = "runs/default"  # checkpoints, event files and the resolved config go here
    seed: int = 0


@dataclass
class SweepRunSection:
    """A fine-tune sweep's folder; its seeds are ``sweep.seeds``, one job each."""

    dir: str = "runs/finetune"


@dataclass
class DataSection:
    """What both stages read of a corpus, and how a window becomes a model input."""

    corpus: str = ""  # a shard corpus directory (python -m preprocess writes one)
    crop_samples: int = 5000
    random_crop: bool = True  # training crops at a random offset; evaluation always at 0
    normalize: str = "ecgfounder"  # ecgfounder (one z-score over the whole array) | per_lead | none
    leads: list[str] = field(default_factory=lambda: list(STANDARD_LEADS))
    workers: int = 2  # DataLoader worker processes per rank (pre-training) or per loader (fine-tune job)
    noise_std: float = 0.0  # augmentation: Gaussian noise in units of the normalised signal
    scale_jitter: float = 0.0  # augmentation: amplitude scale drawn from 1 +- this

    def __post_init__(self) -> None:
        check_choice("data.normalize", self.normalize, ["ecgfounder", "per_lead", "none"])
        unknown = [lead for lead in self.leads if lead not in STANDARD_LEADS]
        if unknown or not self.leads:
            raise ConfigError(f"config key 'data.leads' has {unknown or 'no leads'}; valid: {', '.join(STANDARD_LEADS)}")
        check_range("data.crop_samples", self.crop_samples, 1)
        check_range("data.workers", self.workers, 0)


def corpus_list(corpus: Any) -> list:
    """``data.corpus`` as a list: one directory, or the list given."""
    return list(corpus) if isinstance(corpus, (list, tuple)) else [corpus] if corpus else []


@dataclass
class PretrainDataSection(DataSection):
    """Pre-training also holds out a validation slice and picks its label vocabulary, and may join
    several corpora (sources) in one run."""

    corpus: Any = ""  # a shard corpus directory, or a list of them trained on together
    corpus_weights: list[float] = field(default_factory=list)  # each corpus's share of an epoch; empty: its size
    stage_dir: str = ""  # node-local folder: each node copies the corpora there once and reads them from there
    val_fraction: float = 0.05  # held-out slice of the corpus (by patient) for pre-training validation
    min_label_count: int = 1  # labels with fewer positives leave the target vocabulary
    exclude_from: str = ""  # a corpus whose evaluation folds must not be pre-trained on (matched by content)
    exclude_folds: list[int] = field(default_factory=lambda: [9, 10])  # PTB-XL: validation and test
    allow_none_excluded: bool = False  # run although exclude_from left out nothing while data.corpus holds PTB-XL ids

    def __post_init__(self) -> None:
        super().__post_init__()
        corpora = corpus_list(self.corpus)
        if not all(isinstance(path, str) for path in corpora):
            raise ConfigError(f"config key 'data.corpus' is {self.corpus!r}; give a corpus directory or a list of them")
        if self.corpus_weights and len(self.corpus_weights) != len(corpora):
            raise ConfigError(f"config key 'data.corpus_weights' has {len(self.corpus_weights)} weights for "
                              f"{len(corpora)} corpora in data.corpus")
        for weight in self.corpus_weights:
            check_range("data.corpus_weights", weight, 0.0)
        if self.corpus_weights and sum(self.corpus_weights) <= 0:
            raise ConfigError("config key 'data.corpus_weights' gives every corpus weight 0")
        check_range("data.val_fraction", self.val_fraction, 0.0, 0.5)
        if self.exclude_from and not self.exclude_folds:
            raise ConfigError("config key 'data.exclude_folds' is empty while data.exclude_from is set")


# Which model.name reads each key that one family (or one of MTECG's two models) alone uses: set
# to anything but its default where it would be ignored, it is an error naming it.
MODEL_KEYS_USED_BY = {
    "widths": ("net1d",), "blocks": ("net1d",),
    "size": ("mtecg_mae", "mtecg_cls"), "patch_samples": ("mtecg_mae", "mtecg_cls"),
    "mask_ratio": ("mtecg_mae",), "target": ("mtecg_mae",), "decoder_depth": ("mtecg_mae",),
    "decoder_width": ("mtecg_mae",),
    "pool": ("mtecg_cls",), "num_classes": ("net1d", "mtecg_cls"),
}


@dataclass
class ModelSection:
    name: str = "net1d"  # net1d | mtecg_mae | mtecg_cls
    num_classes: int = 0  # 0: the size of the corpus's label vocabulary
    # Net1D
    widths: list[int] = field(default_factory=lambda: [64, 160, 160, 400, 400, 1024, 1024])
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 3, 3, 4, 4])
    # MTECG
    size: str = "tiny"  # tiny | small | base
    patch_samples: int = 25
    mask_ratio: float = 0.75
    target: str = "fluctuated"  # fluctuated (per-segment normalised) | raw
    decoder_depth: int = 1
    decoder_width: int = 128
    pool: str = "cls"  # cls | mean
    # both
    drop_path: float = 0.0

    def __post_init__(self) -> None:
        check_choice("model.name", self.name, ["net1d", "mtecg_mae", "mtecg_cls"])
        check_choice("model.size", self.size, ["tiny", "small", "base"])
        check_choice("model.target", self.target, ["fluctuated", "raw"])
        check_choice("model.pool", self.pool, ["cls", "mean"])
        check_range("model.mask_ratio", self.mask_ratio, 0.0, 0.95)
        check_range("model.drop_path", self.drop_path, 0.0, 0.9)
        if len(self.widths) != len(self.blocks):
            raise ConfigError("config keys 'model.widths' and 'model.blocks' must have the same length")
        defaults = {f.name: f.default_factory() if f.default_factory is not MISSING else f.default
                    for f in fields(ModelSection)}
        for key, names in MODEL_KEYS_USED_BY.items():
            value = getattr(self, key)
            if self.name not in names and (list(value) if isinstance(value, (list, tuple)) else value) != defaults[key]:
                raise ConfigError(f"config key 'model.{key}' is {getattr(self, key)}, but model.name={self.name} "
                                  f"does not read it (only {' and '.join(names)}): remove it")

    def check_for_finetuning(self, where: str) -> None:
        """Fine-tuning sets the head's classes (the task's) and drop path (finetune.drop_path,
        finetune.baseline_drop_path) itself: a value here would be ignored."""
        for key, instead in (("num_classes", "the task's classes"),
                             ("drop_path", "finetune.drop_path and finetune.baseline_drop_path")):
            if getattr(self, key):
                raise ConfigError(f"config key '{where}.{key}' is {getattr(self, key)}, but fine-tuning ignores it "
                                  f"({instead} decide): remove it")


@dataclass
class TrainSection:
    steps: int = 1000  # optimizer steps
    micro_batch: int = 32  # per rank
    grad_accum: int = 1
    lr_peak: float = 1e-3
    lr_base: float = 0.0  # > 0: MAE's rule, lr_peak = lr_base x global batch / 256 (replaces lr_peak)
    lr_min_ratio: float = 0.01  # cosine floor as a share of lr_peak
    warmup_steps: int = 100
    weight_decay: float = 0.05  # never applied to norms and biases
    clip_grad_norm: float = 1.0
    val_every_steps: int = 200
    val_batches: int = 8
    log_every_steps: int = 10
    image_every_steps: int = 200  # MTECG reconstruction picture
    agree_every_steps: int = 8  # ranks agree on saving / stopping this often: a signal waits at most this many steps
    loss_sync: str = "step"  # "micro_step": every loss read on the host, agreement every step (the path before)
    compile: bool = False  # torch.compile the model inside the engine
    compile_mode: str = "default"  # inductor's mode, pinned so that runs compare
    compile_backend: str = "inductor"  # any torch._dynamo backend: "aot_eager" captures graphs, generates no code

    def __post_init__(self) -> None:
        for key in ("steps", "micro_batch", "grad_accum", "log_every_steps", "val_every_steps", "agree_every_steps"):
            check_range(f"train.{key}", getattr(self, key), 1)
        check_choice("train.loss_sync", self.loss_sync, ("step", "micro_step"))
        check_choice("train.compile_mode", self.compile_mode,
                     ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"))
        if self.compile:
            import torch._dynamo

            check_choice("train.compile_backend", self.compile_backend, torch._dynamo.list_backends(exclude_tags=()))
        check_range("train.lr_peak", self.lr_peak, 0.0)
        check_range("train.lr_base", self.lr_base, 0.0)
        check_range("train.lr_min_ratio", self.lr_min_ratio, 0.0, 1.0)


@dataclass
class CheckpointSection:
    save_every_steps: int = 500  # 0: off
    save_every_minutes: float = 30.0  # 0: off
    keep_last: int = 2  # at least 2: the newest may be the one a crash left incomplete
    fresh_start: bool = False  # when every checkpoint is corrupt, start from step 0 (they are kept, set aside)
    keep_best: str = ""  # a probe metric (probe/<benchmark>/<task>/auroc): its best checkpoint is kept too

    def __post_init__(self) -> None:
        check_range("checkpoint.keep_last", self.keep_last, 2)


@dataclass
class LoggingSection:
    """Where scalars and figures go besides TensorBoard (always written): Weights & Biases when a project is named."""

    wandb_project: str = ""  # "": no W&B run
    wandb_entity: str = ""  # "": the account's default entity
    wandb_mode: str = ""  # online | offline (written under run.dir for ``wandb sync``) | "": wandb's own (WANDB_MODE)

    def __post_init__(self) -> None:
        check_choice("logging.wandb_mode", self.wandb_mode, ["", "online", "offline"])
        if self.wandb_project:
            try:
                importlib.import_module("wandb")  # here, so that a sweep fails before it submits
            except ImportError:
                raise ConfigError("config key 'logging.wandb_project' is set but wandb is not installed: "
                                  "pip install 'ecgdist[wandb]'") from None


@dataclass
class SlurmResources:
    """What a job asks SLURM for; both stages' sections start from these."""

    partition: str = ""
    account: str = ""
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    time_minutes: int = 60
    mem_gb: int = 0  # 0: the partition's default
    signal_seconds: int = 120  # warning signal (SIGUSR1) this long before the time limit
    extra_flags: list[str] = field(default_factory=list)  # more sbatch flags, each "--name=value" or "--name"

    def __post_init__(self) -> None:
        check_range("slurm.cpus_per_task", self.cpus_per_task, 1)
        check_range("slurm.time_minutes", self.time_minutes, 1)
        check_range("slurm.gpus_per_node", self.gpus_per_node, 0)
        check_range("slurm.mem_gb", self.mem_gb, 0)
        check_range("slurm.signal_seconds", self.signal_seconds, 0)
        for flag in self.extra_flags:
            if not flag.startswith("--") or len(flag) < 3 or " " in flag.split("=")[0]:
                raise ConfigError(f"config key 'slurm.extra_flags' has {flag!r}; each item is '--name=value' or '--name'")

    def flag_items(self) -> dict[str, str | bool]:
        """``extra_flags`` as {name: value}, ``True`` for a flag without a value."""
        items: dict[str, str | bool] = {}
        for flag in self.extra_flags:
            name, sep, value = flag[2:].partition("=")
            items[name] = value if sep else True
        return items


@dataclass
class PretrainSlurmSection(SlurmResources):
    """One multi-node job: ``tasks_per_node`` ranks on each of ``nodes`` (one per GPU)."""

    nodes: int = 1
    tasks_per_node: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("slurm.nodes", self.nodes, 1)
        check_range("slurm.tasks_per_node", self.tasks_per_node, 1)


@dataclass
class FinetuneSlurmSection(SlurmResources):
    """A job array of one-task jobs, ``array_parallelism`` running at once."""

    array_parallelism: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("slurm.array_parallelism", self.array_parallelism, 1)
