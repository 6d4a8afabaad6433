"""A fine-tune stage's learning-rate schedule, one interface for the two recipes a sweep runs.

- ``plateau``: the released ECGFounder recipe, ReduceLROnPlateau on the validation macro
  AUROC, stepped once per epoch.
- ``cosine``: MAE's fine-tuning recipe, a linear warm-up over ``warmup_epochs`` then a
  cosine decay to 0 at the stage's last step, stepped after every optimizer step.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ecgdist.config import FinetuneSection


class StageSchedule:
    def __init__(self, optimizer: torch.optim.Optimizer, ft: FinetuneSection, epochs: int, steps_per_epoch: int):
        self.kind = ft.schedule
        if self.kind == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=ft.plateau_factor, patience=ft.plateau_patience)
        else:
            total, warmup = max(1, epochs * steps_per_epoch), min(ft.warmup_epochs, epochs) * steps_per_epoch

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def after_step(self) -> None:
        if self.kind == "cosine":
            self.scheduler.step()

    def after_epoch(self, val_auroc: float) -> None:
        if self.kind == "plateau":
            self.scheduler.step(val_auroc if np.isfinite(val_auroc) else 0.0)

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)
