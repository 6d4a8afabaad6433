"""A model as an ONNX graph for serving outside PyTorch (onnxruntime, TensorRT, a browser).

Input ``signal`` (batch, leads, samples) float32, normalised as the model's recipe says (the
export's config and recipe tell how); the batch axis is dynamic. A classifier (Net1D,
the MTECG classifier) gives ``logits``; a masked autoencoder gives ``features``, its
encoder's pooled features (``models.pooled_features``), which is what it is used for
downstream (its reconstruction masks at random). Exported with torch's dynamo exporter,
then run once in onnxruntime against torch before the file is moved into place.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgdist.files import temp_path_for
from ecgdist.models import pooled_features
from ecgdist.models.mae import MaskedAutoencoder

TOLERANCE = 1e-4  # largest |onnxruntime - torch| accepted at export (float32; seen: ~1e-7 Net1D, ~3e-6 ViT)


class Features(nn.Module):
    """A model's pooled features as its forward (for an autoencoder's ONNX graph)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        return pooled_features(self.model, signal)


def serving_graph(model: nn.Module) -> tuple[nn.Module, str]:
    """(the module to export, its output's name)."""
    return (Features(model), "features") if isinstance(model, MaskedAutoencoder) else (model, "logits")


def export_onnx(model: nn.Module, path: str | os.PathLike, leads: int, samples: int) -> dict:
    """Write ``model`` to ``path`` as ONNX (eval mode, dynamic batch) once onnxruntime gives torch's
    outputs on a batch of 3 within ``TOLERANCE``; {"output", "max_difference"}."""
    try:
        import onnxruntime
    except ImportError:
        raise ValueError("ONNX export needs onnx, onnxscript and onnxruntime: pip install 'ecgdist[onnx]'") from None
    graph, output = serving_graph(model.eval())
    example = torch.zeros(2, leads, samples)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    with torch.no_grad():
        program = torch.onnx.export(graph, (example,), input_names=["signal"], output_names=[output],
                                    dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True)
    program.save(str(tmp))
    check = torch.randn(3, leads, samples, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = graph(check).numpy()
    session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    difference = float(np.abs(session.run([output], {"signal": check.numpy()})[0] - expected).max())
    if not difference <= TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"the ONNX graph's {output} differ from torch's by {difference:.2e} (> {TOLERANCE:g}): "
                         "not written")
    os.replace(tmp, path)
    return {"output": output, "max_difference": difference}
