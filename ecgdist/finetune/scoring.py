"""Scoring a split: a model's outputs for every batch of a loader, and a test split scored once
with its scores, targets and classes kept for the table (fold 10, an external test set).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ecgdist.files import atomic_write_text
from ecgdist.tasks.metrics import evaluate


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def probabilities(model: torch.nn.Module, signal: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(model(signal))


def predict(model: torch.nn.Module, loader: DataLoader, output=probabilities) -> tuple[np.ndarray, np.ndarray]:
    """(``output`` of the model in eval mode for every batch: the class probabilities, or the pooled
    features; the batches' targets)."""
    model.eval()
    outputs, targets = [], []
    with torch.no_grad():
        for batch in loader:
            on_device = loader.dataset.to_device(batch, device_of(model))  # float16 batches finished there
            outputs.append(output(model, on_device["signal"]).float().cpu().numpy())
            targets.append(batch["target"].numpy())
    return np.concatenate(outputs), np.concatenate(targets)


def score_split(folder: Path, model, loader: DataLoader, classes: list[str], bootstrap: int,
                seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Score a test split once: (metrics, targets, scores); scores, targets and classes are kept in
    ``folder`` for the table."""
    scores, targets = predict(model, loader)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "test_scores.npy", scores)
    np.save(folder / "test_targets.npy", targets)
    atomic_write_text(folder / "classes.json", json.dumps(classes))
    return evaluate(targets, scores, classes, bootstrap, seed), targets, scores
