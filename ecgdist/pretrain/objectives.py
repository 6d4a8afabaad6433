"""What each model family minimises: BCE over labels (classifiers), masked reconstruction (MAE)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Objective = Callable[[torch.nn.Module, dict], torch.Tensor]


def multilabel_bce(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """Mean BCE over the (record, label) pairs that count: with ``target_mask`` (several corpora),
    only the labels each record's corpus annotates, so no record is taught "absent" for a code
    nobody looked for in it."""
    logits = model(batch["signal"]).float()
    if "target_mask" not in batch:
        return F.binary_cross_entropy_with_logits(logits, batch["target"])
    mask = batch["target_mask"]
    losses = F.binary_cross_entropy_with_logits(logits, batch["target"], reduction="none")
    return (losses * mask).sum() / mask.sum().clamp(min=1)


def masked_reconstruction(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    loss, _, _ = model(batch["signal"])
    return loss


def objective_for(model_name: str) -> Objective:
    return masked_reconstruction if model_name == "mtecg_mae" else multilabel_bce
