"""Typed run configuration: dataclass schema < YAML file < ``key.sub=value`` overrides.

Each concern has its own section dataclass; a job's config nests them. Loading goes
through OmegaConf structured configs, so an unknown key or a value of the wrong type is
an error at load time, before anything is submitted. Errors name the full dotted key and
the valid choices. Ranges are checked in each section's ``__post_init__``.
"""

from __future__ import annotations

import difflib
import importlib
import math
import os
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from ecgdist.files import atomic_write_text
from ecgdist.leads import STANDARD_LEADS
from ecgdist.safe_load import PLAIN_DATA_TYPES, refused_types

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
# The PTB-XL benchmark's folds, which made folds follow too (ecgdist/tasks/folds.py): the test fold
# is read by nothing but a fine-tune's final evaluation.
SPLIT_FOLDS = {"train": tuple(range(1, 9)), "val": (9,), "test": (10,)}


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the offending key."""


def check_choice(key: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ConfigError(f"config key '{key}' is {value!r}; valid choices: {', '.join(map(str, choices))}")


def check_range(key: str, value: float, low: float | None = None, high: float | None = None) -> None:
    """A finite number in [low, high] (either bound may be open): NaN and infinity never are."""
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"config key '{key}' is {value}; it must be a finite number in [{low}, {high}]")


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


def _explain(error: OmegaConfBaseException, schema: type) -> str:
    key = getattr(error, "full_key", None) or "?"
    if isinstance(error, ConfigKeyError) or "not in" in str(error):
        parent, _, leaf = key.rpartition(".")
        node: Any = schema
        for part in filter(None, parent.split(".")):
            node = {f.name: f.type for f in fields(node)}.get(part, None)
            node = _resolve(schema, node)
        valid = [f.name for f in fields(node)] if node is not None and is_dataclass(node) else []
        hint = difflib.get_close_matches(leaf, valid, n=1)
        where = f"'{parent}'" if parent else "the top level"
        return (f"unknown config key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                + f"; valid keys in {where}: {', '.join(valid)}")
    return f"config key '{key}': {str(error).splitlines()[0]}"


def _resolve(schema: type, annotation: Any) -> Any:
    """Section annotations are strings under ``from __future__ import annotations``."""
    if isinstance(annotation, str):
        import sys
        return getattr(sys.modules[schema.__module__], annotation, None)
    return annotation


def read_yaml_mapping(path: str | os.PathLike) -> Any:
    """A config file's contents; a file that is not YAML, or not a mapping of sections, is a ConfigError."""
    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(error, 'problem', None) or error}") \
            from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"config file {path} holds a {type(loaded).__name__.removesuffix('Config').lower()}, "
                          "not a mapping of sections (run:, data:, ...)")
    return loaded


def load_config(schema: type[T], path: str | os.PathLike | None = None,
                overrides: Sequence[str] = ()) -> T:
    """Build a ``schema`` instance from its defaults, a YAML file and dotted overrides."""
    cfg = OmegaConf.structured(schema)
    try:
        if path is not None:
            cfg = OmegaConf.merge(cfg, read_yaml_mapping(path))
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form key.sub=value")
            key, _, text = item.partition("=")
            # update() walks list indices too (sweep.backbones.1.weights=...); the value is parsed as YAML
            OmegaConf.update(cfg, key, OmegaConf.from_dotlist([f"value={text}"])["value"], merge=True)
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as error:
        cause = error.__cause__ if isinstance(error.__cause__, ConfigError) else None
        raise (cause or ConfigError(_explain(error, schema))) from None


def from_dict(schema: type[T], values: dict) -> T:
    """A ``schema`` instance from a resolved config stored as a dict (in a checkpoint)."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(values)))
    except OmegaConfBaseException as error:
        raise ConfigError(_explain(error, schema)) from None


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Any) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg))


def resolve_path(path: str | os.PathLike) -> Path:
    """A path as given, else relative to the repository (the bundled configs/ work from any folder)."""
    candidate = Path(path)
    return candidate if candidate.exists() or candidate.is_absolute() else REPO / candidate


def save_resolved(cfg: Any, run_dir: str | os.PathLike, notes: Sequence[str] = ()) -> Path:
    """Write the fully resolved config next to a run's outputs (atomically); ``notes`` become
    comments at its end (what the run derived from it, such as how many records were left out)."""
    path = Path(run_dir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, to_yaml(cfg) + "".join(f"# {note}\n" for note in notes))
    return path


STRATEGIES = ("baseline", "post_training", "scratch", "linear", "linear_fit")
PTBXL_TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
BENCHMARK_KINDS = ("ptbxl", "physionet2021", "code15", "labels")  # ecgdist/tasks/benchmark.py defines each


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
    layer_decay: float = 1.0  # 1.0 = off; part of a backbone's recipe: every strategy's full stage uses it
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
    corpora: dict[str, str] = field(default_factory=dict)  # benchmark name: its corpus made with this backbone's recipe
    finetune: dict[str, Any] = field(default_factory=dict)  # finetune.* keys this backbone's jobs change

    def __post_init__(self) -> None:
        self.model.check_for_finetuning(f"sweep.backbones ({self.name}) model")
        valid = [f.name for f in fields(FinetuneSection)]
        unknown = [key for key in self.finetune if key not in valid or key == "weights"]
        if unknown:
            raise ConfigError(f"config key 'sweep.backbones ({self.name}) finetune' has {', '.join(unknown)}; valid "
                              f"keys: {', '.join(k for k in valid if k != 'weights')} (weights is the backbone's own key)")


@dataclass
class BenchmarkSection:
    """A labelled corpus a sweep evaluates on, besides PTB-XL's ``sweep.tasks``: its kind, its tasks
    (empty: every task of the kind) and, for kind ``labels``, the classes scored (empty: all the
    corpus's codes, or the mapping's classes) and a mapping table (CSV ``code,class``)."""

    KEY: ClassVar[str] = "sweep.benchmarks"  # where error messages say the section is
    name: str = ""
    kind: str = "labels"
    corpus: str = ""
    tasks: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    mapping: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"config key '{self.KEY}' has a benchmark named {self.name!r}: a name is one word "
                              "(letters, digits, _); it labels jobs, table rows and probe scalars")
        check_choice(f"{self.KEY} ({self.name}) kind", self.kind, BENCHMARK_KINDS)
        if not self.corpus and self.KEY == BenchmarkSection.KEY:
            raise ConfigError(f"config key '{self.KEY} ({self.name}) corpus' is empty: name the benchmark's corpus")
        if self.kind != "labels" and (self.classes or self.mapping):
            raise ConfigError(f"config key '{self.KEY} ({self.name})': classes and mapping are for kind labels; "
                              f"a {self.kind} benchmark scores its own classes")


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
        for backbone in self.backbones:
            unknown = sorted(set(backbone.corpora) - set(benchmarks))
            if unknown:
                raise ConfigError(f"config key 'sweep.backbones ({backbone.name}) corpora' names {', '.join(unknown)}, "
                                  f"which sweep.benchmarks does not have ({', '.join(benchmarks) or 'none'})")
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
