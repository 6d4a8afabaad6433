"""Loading pre-trained weights: the released ECGFounder format, the published MTECG layout, ecgdist exports.

ECGFounder files and ecgdist ``.pth`` exports are a dict whose ``state_dict`` maps names to
tensors (ecgdist adds ``config``, ``provenance``, ...); ecgdist ``.safetensors`` exports hold
the same as tensors and JSON metadata (models/safetensors_file.py, no pickle at all); MTECG files (fwaiaccount/MTECG-SPEED-TR,
model ``ti_12_25``, a DeiT-style ViT over a 1 x 12 x 5000 image) hold theirs under
``model`` and are renamed to ours by a key map in front of the one loader. Files load
with ``weights_only=True``: no pickled code runs. Loading is strict: every missing key,
unexpected key and shape mismatch is listed in one error. Only the head may differ
(another number of classes): it is then left freshly initialised. A ViT position
embedding made for another crop length is interpolated along time, and the log says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ecgdist.files import atomic_torch_save
from ecgdist.models import head_parameter_names
from ecgdist.models.hub import WeightsUnavailable, locate_weights
from ecgdist.models.safetensors_file import is_safetensors, load_safetensors, save_safetensors
from ecgdist.safe_load import UnreadableFile, load

log = logging.getLogger(__name__)


class CheckpointMismatchError(RuntimeError):
    """The file's weights do not fit the model; the message lists every difference."""


class UnreadableWeights(ValueError):
    """The file holds more than tensors and plain values (a pickled class), or no torch data at all."""


class WeightsChanged(UnreadableWeights):
    """The file is not the one whose checksum was recorded (a sweep's other jobs trained on that one)."""


def read_weights(path: str | os.PathLike, trusted_types: Sequence[str] = (),
                 expected_sha256: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict of a weights file or Hub reference (``module.`` prefixes removed) and its other
    entries. Loaded with ``weights_only``: tensors, plain values and the ``trusted_types`` only.
    ``expected_sha256``: the file must have this checksum; the bytes checked are the bytes loaded
    (one read, nothing can change in between)."""
    try:
        local = locate_weights(path)
    except WeightsUnavailable as error:
        raise UnreadableWeights(str(error)) from None
    if expected_sha256:
        data = local.read_bytes()  # one read: the bytes checked are the bytes loaded
        head = data[:9]
    else:
        data = None
        with open(local, "rb") as f:
            head = f.read(9)
    safetensors = is_safetensors(head)
    if safetensors and data is None:
        data = local.read_bytes()
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise WeightsChanged(f"{path} changed since its checksum was recorded (sha256)")
    state, extra = _safetensors_entries(data, path) if safetensors else _torch_entries(local, trusted_types, data, path)
    return (from_published_mtecg(state, path) if "patch_embed.proj.weight" in state else state), extra


def _safetensors_entries(data: bytes, path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        return load_safetensors(data)
    except (ValueError, KeyError, OSError) as error:  # a damaged header, a JSON that does not parse
        raise UnreadableWeights(f"{path}: not a readable safetensors file ({error})") from None


def _torch_entries(local: Path, trusted_types: Sequence[str], data: bytes | None,
                   path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A torch.save file's state dict (under ``state_dict`` or ``model``, or the whole dict) and its other entries."""
    try:
        blob = load(local, trusted_types, data=data)
    except UnreadableFile as error:
        raise UnreadableWeights(str(error)) from None
    if not isinstance(blob, dict):
        raise CheckpointMismatchError(f"{path}: expected a dict of tensors, found {type(blob).__name__}")
    key = next((k for k in ("state_dict", "model") if isinstance(blob.get(k), dict)), None)
    extra = {k: v for k, v in blob.items() if k != key}
    state = blob[key] if key else blob
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}, extra


def from_published_mtecg(state: dict[str, torch.Tensor], path) -> dict[str, torch.Tensor]:
    """The published MTECG ViT's names and shapes as ours: its Conv2d over a (1, 12, L) image
    is our Conv1d over (12, L) with the lead axis folded into the input channels."""
    if "fc_norm.weight" in state:
        raise CheckpointMismatchError(f"{path}: the global-pool variant of the MTECG ViT (fc_norm after the mean) "
                                      "is not supported; use a class-token checkpoint (norm, then the class token)")
    renamed = {}
    for name, tensor in state.items():
        if name == "patch_embed.proj.weight":  # (D, 1, C, P) -> (D, C, P)
            renamed["embed.proj.weight"] = tensor.flatten(1, 2) if tensor.shape[1] == 1 else tensor
        elif name.startswith("patch_embed.proj."):
            renamed["embed." + name.removeprefix("patch_embed.")] = tensor
        elif name in ("cls_token", "pos_embed"):
            renamed[f"embed.{name}"] = tensor
        else:
            renamed[name] = tensor
    return renamed


def fit_position_embedding(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], path) -> None:
    """Interpolate a ViT position embedding trained at another number of segments (in place)."""
    for name, tensor in list(state.items()):
        if name.endswith("embed.pos_embed") and name in own and tensor.shape != own[name].shape \
                and tensor.shape[-1] == own[name].shape[-1]:
            segments = own[name].shape[1] - 1
            grid = F.interpolate(tensor[:, 1:].transpose(1, 2), size=segments, mode="linear", align_corners=False)
            state[name] = torch.cat([tensor[:, :1], grid.transpose(1, 2)], dim=1)
            log.info("%s: position embedding interpolated from %d to %d segments (another crop length)",
                     path, tensor.shape[1] - 1, segments)


def _encoder_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A masked autoencoder's export used for a classifier: keep the encoder, drop the decoder."""
    return {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}


def load_pretrained(model: nn.Module, path: str | os.PathLike, reset_head: bool = False,
                    trusted_types: Sequence[str] = (), state: dict[str, torch.Tensor] | None = None) -> list[str]:
    """Load ``path`` (a file or a Hub reference) into ``model``; returns the names left at their
    fresh initialisation. ``state``: the file's tensors when ``read_weights`` already read them,
    so a large file is read once however many models it starts.

    The head loads when its shape fits, unless ``reset_head`` (fine-tuning: a task's head
    starts fresh even when the file's has the same number of classes)."""
    state = dict(read_weights(path, trusted_types)[0] if state is None else state)  # adapted below, not in place
    own = model.state_dict()
    if not any(k in own for k in state) and any(k.startswith("encoder.") for k in state):
        state = _encoder_only(state)
    fit_position_embedding(state, own, path)
    head = head_parameter_names(model)
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
    """Write consolidated fp32 weights (plus ``extra``), atomically: safetensors for a
    ``.safetensors`` path, else the released format (``{"state_dict": ...}``, torch.save)."""
    state = {k: v.detach().float().cpu().clone() if v.is_floating_point() else v.cpu().clone()
             for k, v in model.state_dict().items()}
    write_weights(path, state, extra)


def write_weights(path: str | os.PathLike, state: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
    """``state`` and ``extra`` in the format ``path``'s suffix names (``.safetensors``, else torch.save)."""
    if Path(path).suffix == ".safetensors":
        save_safetensors(path, state, extra)
    else:
        atomic_torch_save({"state_dict": state, **extra}, Path(path))
