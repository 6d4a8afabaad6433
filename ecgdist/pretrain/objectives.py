"""What each model family minimises: BCE over labels (classifiers), masked reconstruction (MAE)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Objective = Callable[[torch.nn.Module, dict], torch.Tensor]


def multilabel_bce(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(model(batch["signal"]).float(), batch["target"])


def masked_reconstruction(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    loss, _, _ = model(batch["signal"])
    return loss


def objective_for(model_name: str) -> Objective:
    return masked_reconstruction if model_name == "mtecg_mae" else multilabel_bce
