"""Loading pre-trained weights: the released ECGFounder format and ecgdist's own exports.

Both are a dict whose ``state_dict`` maps names to tensors (ecgdist adds ``config``).
Files load with ``weights_only=True``: no pickled code runs. Loading is strict: every
missing key, unexpected key and shape mismatch is listed in one error. Only the head may
differ (another number of classes): it is then left freshly initialised.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn


class CheckpointMismatchError(RuntimeError):
    """The file's weights do not fit the model; the message lists every difference."""


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict of a weights file (``module.`` prefixes removed) and its other entries."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict):
        raise CheckpointMismatchError(f"{path}: expected a dict of tensors, found {type(blob).__name__}")
    extra = {k: v for k, v in blob.items() if k != "state_dict"}
    state = blob.get("state_dict", blob)
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}, extra


def _encoder_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A masked autoencoder's export used for a classifier: keep the encoder, drop the decoder."""
    return {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}


def load_pretrained(model: nn.Module, path: str | os.PathLike, reset_head: bool = False) -> list[str]:
    """Load ``path`` into ``model``; returns the names left at their fresh initialisation.

    The head loads when its shape fits, unless ``reset_head`` (fine-tuning: a task's head
    starts fresh even when the file's has the same number of classes)."""
    state, _ = read_weights(path)
    own = model.state_dict()
    if not any(k in own for k in state) and any(k.startswith("encoder.") for k in state):
        state = _encoder_only(state)
    head = model.head_parameter_names() if hasattr(model, "head_parameter_names") else set()
    missing = sorted(set(own) - set(state) - head)
    unexpected = sorted(set(state) - set(own) - head)
    shapes = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape and k not in head)
    if missing or unexpected or shapes:
        lines = [f"{path} does not fit {type(model).__name__}:"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20]) + (" ..." if len(items) > 20 else ""))
        raise CheckpointMismatchError("\n".join(lines))
    fresh = sorted(k for k in head if reset_head or k not in state or state[k].shape != own[k].shape)
    model.load_state_dict({k: v for k, v in state.items() if k not in fresh}, strict=not fresh)
    return fresh


def save_weights(model: nn.Module, path: str | os.PathLike, **extra: Any) -> None:
    """Write consolidated fp32 weights in the released format (plus ``extra``), atomically."""
    tmp = f"{path}.tmp"
    state = {k: v.detach().float().cpu().clone() if v.is_floating_point() else v.cpu().clone()
             for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, **extra}, tmp)
    os.replace(tmp, path)
