"""One fine-tune: a benchmark's task, a strategy, a label fraction, a seed; a submitit job.

Strategies (every part a config switch, so ablations are config lines):

- ``baseline``: the backbone's own recipe on the pre-trained model with a fresh head. By
  default the released ECGFounder one: Adam (lr 5e-5, weight decay 1e-5 on every
  parameter), BCE, ReduceLROnPlateau on validation macro AUROC; a backbone may name MAE's
  instead (``optimizer: adamw``, ``schedule: cosine``, ``warmup_epochs``, ``layer_decay``,
  ``baseline_drop_path``).
- ``post_training``: the same recipe, plus stage 1, preview linear probing (only the new
  head trains, the backbone frozen and in eval mode), and a stochastic-depth rate of its
  own (``drop_path``) in stage 2, full fine-tuning.
- ``scratch``: the baseline recipe from random weights, without layer-wise LR decay.
- ``linear``: post-training's stage 1 alone (the frozen backbone's features, a trained
  linear head): the linear evaluation papers report.
- ``linear_fit``: no gradient step; one logistic regression per class on the frozen
  backbone's pooled features of the training records (tasks/linear_fit.py, its C chosen by
  fold 9's macro AUROC), set as the model's head: a read-out fitted to convergence.

Model selection uses fold 9 only: the weights with the best validation macro AUROC over
all epochs of all stages. Fold 10 is read once, at the end, with those weights. The job
saves its progress after every epoch (``state.pt``, plain data) and the selected weights
when they improve (``best.pt``); a requeued job (``checkpoint()``) resumes at its stage and
epoch. ``result.json``, written last, marks the job finished.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from ecgdist.config import BenchmarkSection, FinetuneConfig, FinetuneSection, to_dict
from ecgdist.data.dataset import ShardCorpus, ShardDataset
from ecgdist.data.loader import make_loader
from ecgdist.data.sampler import BlockBatchSampler, EpochPermutationSampler
from ecgdist.data.transforms import Transform, check_crop
from ecgdist.files import atomic_write_text
from ecgdist.finetune.external import EXTERNAL, score_external, unscored_tests
from ecgdist.finetune.progress import JobProgress, keep_if_best, load_best, resume_progress, save_progress
from ecgdist.finetune.provenance import finetuned_provenance
from ecgdist.finetune.schedule import StageSchedule
from ecgdist.finetune.scoring import device_of, predict, score_split
from ecgdist.finetune.weights import build_finetune_model, starting_weights
from ecgdist.loggers import make_logger
from ecgdist.models import pooled_features
from ecgdist.models.param_groups import param_groups
from ecgdist.models.pretrained import read_weights, save_weights
from ecgdist.tasks.benchmark import TaskSplit, task_splits, training_subset
from ecgdist.tasks.linear_fit import C_GRID, select_c
from ecgdist.tasks.metrics import macro_auroc

log = logging.getLogger(__name__)
RESULT, MODEL = "result.json", "model.pth"


@dataclass(frozen=True)
class JobSpec:
    task: str
    strategy: str
    fraction: float
    seed: int
    backbone: str = ""  # a sweep's backbone label; "" when it has one backbone
    benchmark: str = ""  # a name in sweep.benchmarks; "": PTB-XL's sweep.tasks on data.corpus

    @property
    def name(self) -> str:
        return (f"{self.backbone}-" * bool(self.backbone) + f"{self.benchmark}-" * bool(self.benchmark)
                + f"{self.task}-{self.strategy}-f{self.fraction:g}-s{self.seed}")


def benchmark_of(cfg: FinetuneConfig, name: str) -> BenchmarkSection:
    """A job's benchmark by its ``JobSpec.benchmark`` name ("": PTB-XL's ``sweep.tasks`` on ``data.corpus``)."""
    if not name:
        return BenchmarkSection(name="ptbxl", kind="ptbxl", corpus=cfg.data.corpus)
    return next(b for b in cfg.sweep.benchmarks if b.name == name)


def stages(ft: FinetuneSection, strategy: str) -> list[tuple[str, int]]:
    """(stage, epochs) in order: "probe" trains the head only, "full" everything.

    With ``match_epochs`` the baseline trains as many epochs as post-training's probe and
    fine-tune together, so a gain cannot come from training longer."""
    probe = ft.probe_epochs if ft.linear_probe else 0
    if strategy == "linear_fit":
        return []
    if strategy == "linear":
        return [("probe", probe)]
    if strategy == "post_training" and probe:
        return [("probe", probe), ("full", ft.epochs)]
    if strategy == "baseline" and ft.match_epochs:
        return [("full", ft.epochs + probe)]
    return [("full", ft.epochs)]


def backbone_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    head = {id(p) for p in model.get_classifier().parameters()}
    return [p for p in model.parameters() if id(p) not in head]


def fit_linear_head(model: torch.nn.Module, loaders: Loaders, logger) -> dict:
    """The ``linear_fit`` strategy: the head becomes the logistic regressions fitted on the training
    records' pooled features, with the C whose read-out scores best on fold 9; fold 10 is not read."""
    (train_x, train_y), (val_x, val_y) = (predict(model, loader, pooled_features)
                                          for loader in (loaders.train_in_order, loaders.val))
    c, val_auroc, (weight, bias) = select_c(train_x.astype(np.float64), train_y, val_x.astype(np.float64), val_y)
    head = model.get_classifier()
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    logger.log({"val/macro_auroc": val_auroc, "linear_fit/c": c}, 0)
    return {"c": c, "grid": list(C_GRID), "val_macro_auroc": val_auroc}


def train_epoch(model, loader, optimizer, stage: str, ema=None, schedule: StageSchedule | None = None) -> float:
    model.train()
    if stage == "probe":  # frozen backbone: its dropout/drop-path/BatchNorm stay in eval mode
        model.eval()
        model.get_classifier().train()
    total, count, device = 0.0, 0, device_of(model)
    for batch in loader:
        batch = loader.dataset.to_device(batch, device)
        loss = F.binary_cross_entropy_with_logits(model(batch["signal"]), batch["target"])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} in a {stage} epoch")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.after_step()
        if ema is not None:
            ema.update_parameters(model)
        total += loss.item() * len(batch["index"])
        count += len(batch["index"])
    return total / max(count, 1)


def make_optimizer(model: torch.nn.Module, stage: str, ft: FinetuneSection, strategy: str) -> torch.optim.Optimizer:
    """The backbone's recipe: Adam with weight decay on every parameter (released ECGFounder), or AdamW
    without it on norms and biases (MAE), in both stages, with its layer-wise LR decay in the full
    stage. The probe stage trains the head alone. ``scratch`` trains without layer decay: it keeps
    pre-trained lower layers near where pre-training left them, and random ones have nothing to keep
    (at 0.75 over MTECG-T's 14 layers, its embedding would learn at 2 % of the rate: a handicapped
    from-scratch row overstates what pre-training buys)."""
    frozen = stage == "probe"
    for p in backbone_parameters(model):
        p.requires_grad_(not frozen)
    kind = torch.optim.AdamW if ft.optimizer == "adamw" else torch.optim.Adam
    lr = ft.probe_lr if frozen else ft.lr
    layer_decay = 1.0 if frozen or strategy == "scratch" else ft.layer_decay
    groups = param_groups(model, lr, ft.weight_decay, layer_decay, decay_all=ft.optimizer == "adam")
    return kind([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=lr)


LABEL_FRACTIONS = "label_fractions.json"  # a sweep's record: {fraction_key(spec): training record ids}


def fraction_key(spec: JobSpec) -> str:
    """Which subset a job trains on: one per benchmark, task, fraction and seed, shared by strategies and backbones."""
    return f"{spec.benchmark}/" * bool(spec.benchmark) + f"{spec.task}/fraction{spec.fraction:g}/seed{spec.seed}"


class Loaders:
    def __init__(self, cfg: FinetuneConfig, spec: JobSpec, corpus: ShardCorpus | None = None,
                 train_records: list[str] | None = None) -> None:
        """``train_records``: the subset the sweep recorded for a label fraction below 1 (else drawn here)."""
        corpus = ShardCorpus(cfg.data.corpus) if corpus is None else corpus
        check_crop(cfg.data.crop_samples, corpus.manifest.recipe.samples, corpus.path)
        self.benchmark = benchmark_of(cfg, spec.benchmark)
        task = task_splits(corpus.path, self.benchmark.kind, spec.task, self.benchmark.classes, self.benchmark.mapping)
        self.classes, splits, self.classes_left_out = task.classes, task.splits, task.left_out
        # every training-fold record of the task (not only the fraction): what pre-training must not have seen
        self.training_rows = splits["train"].indices
        splits["train"] = training_subset(splits["train"], spec.fraction, spec.seed, train_records)
        self.trained_rows = splits["train"].indices  # the ones this job learns from
        self.without_training_positive = splits["train"].classes_without_positive(self.classes)
        d, self.batch_size, self.seed = cfg.data, cfg.finetune.batch_size, spec.seed
        train_t = Transform(d.crop_samples, d.random_crop, d.normalize, tuple(d.leads), d.noise_std, d.scale_jitter)
        self.eval_transform = Transform(d.crop_samples, False, d.normalize, tuple(d.leads))
        # Each job computes on the CPUs the sweep asks SLURM for, in the local queue too, where
        # slurm.array_parallelism jobs share the machine.
        self.workers, self.cores = d.workers, cfg.slurm.cpus_per_task
        train = ShardDataset(corpus, splits["train"].indices, splits["train"].targets, train_t, spec.seed,
                             device_transform=True)
        self.sizes = {name: len(s.indices) for name, s in splits.items()}
        self.train_sampler = EpochPermutationSampler(len(train), self.batch_size, seed=spec.seed)
        self.train = make_loader(train, self.train_sampler, self.workers, cores=self.cores)
        self.val, self.test = (self.evaluation_loader(corpus, splits[n]) for n in ("val", "test"))
        # linear_fit: the training records' windows as evaluation sees them, once each
        self.train_in_order = self.evaluation_loader(corpus, splits["train"]) if spec.strategy == "linear_fit" else None
        self.recipe = corpus.manifest.recipe.to_dict()
        self.simulated = bool(corpus.manifest.extra.get("simulated"))

    def evaluation_loader(self, corpus: ShardCorpus, split: TaskSplit) -> DataLoader:
        """A split's windows from offset 0, in storage order: fold 9, fold 10, an external test set."""
        data = ShardDataset(corpus, split.indices, split.targets, self.eval_transform, self.seed, device_transform=True)
        return make_loader(data, BlockBatchSampler(data.shards_of(), self.batch_size, shuffle=False), self.workers,
                           cores=self.cores)


WEIGHTS_RECORD = "weights.json"  # a sweep's record of each backbone's weights checksum, from its first submission


def submitted_weights_sha256(cfg: FinetuneConfig, spec: JobSpec, job_dir: Path) -> str:
    """The weights checksum the job's sweep recorded (``SWEEP/weights.json``; the job is ``SWEEP/jobs/NAME``)."""
    record = job_dir.parent.parent / WEIGHTS_RECORD
    entry = json.loads(record.read_text()).get(spec.backbone or cfg.model.name, {}) if record.exists() else {}
    return entry.get("sha256", "") if entry.get("weights") == cfg.finetune.weights else ""


def recorded_training_records(spec: JobSpec, job_dir: Path) -> list[str] | None:
    """The label-fraction subset the job's sweep wrote down (``SWEEP/label_fractions.json``), if any."""
    record = job_dir.parent.parent / LABEL_FRACTIONS
    return json.loads(record.read_text()).get(fraction_key(spec)) if spec.fraction < 1 and record.exists() else None


def train_stage(cfg: FinetuneConfig, job_dir: Path, model, loaders, progress: JobProgress, saved: dict,
                logger, strategy: str) -> None:
    """The epochs left in ``progress.stage``: train, select on fold 9, save after each."""
    stage, epochs = stages(cfg.finetune, strategy)[progress.stage]
    optimizer = make_optimizer(model, stage, cfg.finetune, strategy)
    scheduler = StageSchedule(optimizer, cfg.finetune, epochs, len(loaders.train))
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.finetune.ema_decay)) \
        if cfg.finetune.ema_decay else None
    if progress.epoch:  # resuming inside this stage
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
    for epoch in range(progress.epoch, epochs):
        loaders.train_sampler.set_epoch(progress.global_epoch)
        train_loss = train_epoch(model, loaders.train, optimizer, stage, ema, scheduler)
        evaluated = ema.module if ema is not None else model  # the weights scored are the ones kept
        val_auroc = float(macro_auroc(*reversed(predict(evaluated, loaders.val))))
        scheduler.after_epoch(val_auroc)
        progress.history.append({"stage": stage, "epoch": progress.global_epoch + 1, "train_loss": train_loss,
                                 "val_macro_auroc": val_auroc})
        keep_if_best(job_dir, progress, evaluated, val_auroc)
        logger.log({f"{stage}/train_loss": train_loss, "val/macro_auroc": val_auroc,
                    "lr": optimizer.param_groups[0]["lr"]}, progress.global_epoch)
        progress.epoch = epoch + 1
        save_progress(job_dir, progress, model, optimizer, scheduler, ema)


def run_job(cfg: FinetuneConfig, spec: JobSpec, job_dir: Path) -> dict:
    job_dir.mkdir(parents=True, exist_ok=True)
    if (job_dir / RESULT).exists():
        result = json.loads((job_dir / RESULT).read_text())
        added = unscored_tests(benchmark_of(cfg, spec.benchmark), result)
        return score_added_tests(cfg, spec, job_dir, result, added) if added else result
    torch.manual_seed(spec.seed)
    corpus = ShardCorpus(cfg.data.corpus)
    loaders = Loaders(cfg, spec, corpus, recorded_training_records(spec, job_dir))
    sha256 = submitted_weights_sha256(cfg, spec, job_dir)
    pretrained, pretraining, backbone = starting_weights(cfg, spec.strategy, corpus, sha256, loaders.training_rows)
    provenance = finetuned_provenance(backbone, str(corpus.path), loaders.trained_rows)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_finetune_model(cfg, spec.strategy, len(loaders.classes), pretrained).to(device)
    del pretrained  # the model holds its own copy
    plan = stages(cfg.finetune, spec.strategy)
    progress, saved = resume_progress(job_dir, model, device)
    if saved:
        log.info("%s: resuming at stage %s epoch %d", spec.name, plan[progress.stage][0], progress.epoch)
    logger = make_logger(job_dir, True, cfg.logging, spec.name, to_dict(cfg), group=job_dir.parent.parent.name)
    fitted = fit_linear_head(model, loaders, logger) if spec.strategy == "linear_fit" else None
    if fitted is not None:
        progress.best_auroc = fitted["val_macro_auroc"]
    while plan:
        train_stage(cfg, job_dir, model, loaders, progress, saved, logger, spec.strategy)
        if progress.stage + 1 == len(plan):
            break
        load_best(job_dir, model)  # stage 2 starts from the probe's selected weights
        progress.stage, progress.epoch = progress.stage + 1, 0
        save_progress(job_dir, progress, model)
    load_best(job_dir, model)  # every test below scores the weights fold 9 selected
    external = score_external(cfg, spec, job_dir, model, loaders, corpus, backbone)
    return finish(cfg, spec, job_dir, model, loaders, progress, logger, pretraining, provenance, fitted, external)


def score_added_tests(cfg: FinetuneConfig, spec: JobSpec, job_dir: Path, result: dict, names: list[str]) -> dict:
    """A finished job's model (its model.pth, the weights fold 9 selected) scored on external test sets
    its sweep named after it finished; nothing trains again."""
    corpus = ShardCorpus(cfg.data.corpus)
    loaders = Loaders(cfg, spec, corpus, recorded_training_records(spec, job_dir))
    _, _, backbone = starting_weights(cfg, spec.strategy, corpus, submitted_weights_sha256(cfg, spec, job_dir))
    unloaded = replace(cfg, finetune=replace(cfg.finetune, weights=""))
    model = build_finetune_model(unloaded, spec.strategy, len(loaders.classes))
    model.load_state_dict(read_weights(job_dir / MODEL)[0])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scored = score_external(cfg, spec, job_dir, model.to(device), loaders, corpus, backbone, names)
    result = {**result, EXTERNAL: {**result.get(EXTERNAL, {}), **scored}}
    atomic_write_text(job_dir / RESULT, json.dumps(result, indent=1))
    return result


def finish(cfg, spec, job_dir, model, loaders, progress: JobProgress, logger, pretraining, provenance,
           fitted: dict | None, tested_elsewhere: dict) -> dict:
    """Fold 10, once, with the weights fold 9 selected (loaded); ``tested_elsewhere``: the external
    test sets' results. ``model.pth`` lists what the weights trained on."""
    from ecgdist.finetune.plots import roc_pr_figure

    save_weights(model, job_dir / MODEL, classes=loaders.classes, config=to_dict(cfg), recipe=loaders.recipe,
                 task=spec.task, simulated=loaders.simulated, provenance=provenance)  # ``ecgdist.predict`` loads it
    metrics, targets, scores = score_split(job_dir, model, loaders.test, loaders.classes, cfg.finetune.bootstrap,
                                           spec.seed)
    title = ("SIMULATED ECGs (not PTB-XL): " if loaders.simulated else f"{loaders.benchmark.name} ") + \
        f"{spec.task} test fold"
    logger.figure("test/roc_pr", roc_pr_figure(targets, scores, loaders.classes, title=title), progress.best_epoch or 0)
    logger.hparams({"benchmark": loaders.benchmark.name, "task": spec.task, "strategy": spec.strategy,
                    "fraction": spec.fraction, "seed": spec.seed},
                   {"test/macro_auroc": metrics["macro_auroc"], "test/macro_auprc": metrics["macro_auprc"],
                    **{f"{EXTERNAL}/{name}/{m}": r[m] for name, r in tested_elsewhere.items()
                       for m in ("macro_auroc", "macro_auprc")}})
    logger.close()
    result = {"job": spec.name, "backbone": spec.backbone or cfg.model.name, "benchmark": loaders.benchmark.name,
              "task": spec.task, "classes_not_in_task": loaders.classes_left_out,
              "strategy": spec.strategy, "fraction": spec.fraction,
              "pretraining_data": pretraining, "simulated": loaders.simulated,
              "seed": spec.seed, "selected_epoch": progress.best_epoch, "epochs_trained": progress.global_epoch,
              "val_macro_auroc": progress.best_auroc,
              "resumes": progress.resumes, "classes_without_training_positive": loaders.without_training_positive,
              "recipe": {"corpus": str(cfg.data.corpus), "inputs": loaders.recipe, "finetune": to_dict(cfg)["finetune"]},
              "records": loaders.sizes, **({"linear_fit": fitted} if fitted else {}),
              **({EXTERNAL: tested_elsewhere} if tested_elsewhere else {}), **metrics}
    atomic_write_text(job_dir / RESULT, json.dumps(result, indent=1))
    return result


class FinetuneJob:
    """The submitit callable: pickled with its config; the state it resumes from is on disk."""

    def __init__(self, cfg: FinetuneConfig, spec: JobSpec, job_dir: str) -> None:
        self.cfg, self.spec, self.job_dir = cfg, spec, job_dir

    def __call__(self) -> dict:
        logging.basicConfig(level=logging.INFO)
        return run_job(self.cfg, self.spec, Path(self.job_dir))

    def checkpoint(self, *args, **kwargs):
        """Called by submitit on preemption or timeout: requeue; state.pt holds the progress."""
        import submitit

        return submitit.helpers.DelayedSubmission(FinetuneJob(self.cfg, self.spec, self.job_dir))
