"""Weights files in safetensors: tensors and JSON, nothing that unpickles.

Other ecosystems' tools (the Hub's viewer, ``safetensors`` in any language) read these
files. The model's tensors keep their names; what an ecgdist export carries besides them
(config, labels, recipe, step, provenance) is one JSON document in the header's metadata,
under ``ecgdist``, and any tensor inside it (the training records' fingerprints and
identities) is stored as a tensor named ``__extra__.<path>`` that the JSON points to.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from ecgdist.files import atomic_write_bytes

METADATA_KEY = "ecgdist"
EXTRA_PREFIX = "__extra__."
TENSOR_REF = "__tensor__"  # {"__tensor__": name} in the JSON: that tensor of the file


def is_safetensors(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 9 bytes or more) is safetensors: a
    little-endian u64 header length, then the header's JSON."""
    return len(head) >= 9 and head[8:9] == b"{" and 2 <= struct.unpack("<Q", head[:8])[0] < 100_000_000


def _split(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON, its tensors moved into ``tensors`` under their dotted path."""
    if isinstance(value, torch.Tensor):
        name = EXTRA_PREFIX + path
        tensors[name] = value.detach().cpu().contiguous()
        return {TENSOR_REF: name}
    if isinstance(value, dict):
        return {str(k): _split(v, f"{path}.{k}" if path else str(k), tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]
    return value


def _join(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {TENSOR_REF}:
            return tensors[value[TENSOR_REF]]
        return {k: _join(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, tensors) for v in value]
    return value


def save_safetensors(path: str | os.PathLike, state: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
    """Write ``state`` and ``extra`` (JSON-able values and tensors) atomically."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in state.items()}
    document = _split(extra, "", tensors)
    atomic_write_bytes(path, save_bytes(tensors, metadata={"format": "pt", METADATA_KEY: json.dumps(document)}))


def load_safetensors(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(the model's tensors, the extras) of a file's bytes; a plain safetensors file has no extras."""
    tensors = load_bytes(data)
    (length,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8:8 + length]).get("__metadata__") or {}
    extra = _join(json.loads(metadata[METADATA_KEY]), tensors) if METADATA_KEY in metadata else {}
    return {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}, extra
