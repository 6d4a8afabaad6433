"""Where a fine-tune job stands, on disk: resumable after every epoch, its selected weights kept.

``state.pt`` (plain data, read with ``weights_only``) holds the progress, the trainer's state and
the RNG streams after each epoch and between stages, so a requeued job continues the same run;
``best.pt`` holds the weights fold-9 validation selected so far, rewritten only when they improve.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ecgdist.files import atomic_torch_save
from ecgdist.safe_load import load

STATE, BEST = "state.pt", "best.pt"


@dataclass
class JobProgress:
    """Where a job stands between epochs; plain data, so that state.pt reads with ``weights_only``."""

    stage: int = 0  # index into ``stages``
    epoch: int = 0  # epochs done in that stage
    best_auroc: float = -1.0  # validation macro AUROC of the weights in best.pt
    best_epoch: int | None = None  # their epoch, counted over all stages
    history: list[dict] = dataclasses.field(default_factory=list)
    resumes: int = 0

    @property
    def global_epoch(self) -> int:
        return len(self.history)


def save_progress(job_dir: Path, progress: JobProgress, model, optimizer=None, scheduler=None, ema=None) -> None:
    """After each epoch and between stages: where the job is, the trainer's state, and the RNG streams
    (CPU, and every CUDA device's), so a requeued job continues the same run."""
    atomic_torch_save({
        "progress": dataclasses.asdict(progress), "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "ema": ema.state_dict() if ema is not None else None,
        "rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        job_dir / STATE)


def resume_progress(job_dir: Path, model, device) -> tuple[JobProgress, dict]:
    """The saved progress with the model and RNG streams restored, and the saved trainer state
    (optimizer, scheduler, EMA) for the stage to load; a fresh start when nothing is saved."""
    if not (job_dir / STATE).exists():
        (job_dir / BEST).unlink(missing_ok=True)  # from a start that saved no progress: not this run's
        return JobProgress(), {}
    saved = load(job_dir / STATE, map_location=device)
    progress = JobProgress(**saved["progress"])
    model.load_state_dict(saved["model"])
    torch.set_rng_state(saved["rng"].cpu())
    if saved["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in saved["cuda_rng"]])
    progress.resumes += 1
    return progress, saved


def keep_if_best(job_dir: Path, progress: JobProgress, evaluated, val_auroc: float) -> None:
    """best.pt holds the weights model selection chose so far; rewritten only when they improve."""
    if np.isfinite(val_auroc) and val_auroc > progress.best_auroc:
        atomic_torch_save({"state_dict": evaluated.state_dict(), "epoch": progress.global_epoch,
                           "val_macro_auroc": val_auroc}, job_dir / BEST)
        progress.best_auroc, progress.best_epoch = val_auroc, progress.global_epoch


def load_best(job_dir: Path, model) -> None:
    if (job_dir / BEST).exists():
        model.load_state_dict(load(job_dir / BEST, map_location="cpu")["state_dict"])
