"""Optimizer parameter groups for both stages: weight decay by kind, layer-wise LR decay by depth.

AdamW never decays norms, biases or embeddings (the model's ``no_weight_decay``), unless
``decay_all`` (the released ECGFounder fine-tune recipe decays every parameter).
Layer-wise LR decay scales layer i of n by decay ** (n - 1 - i), so the head learns at the
full rate and the stem slowest. Here, below pre-training and fine-tuning, so that neither
stage imports the other.
"""

from __future__ import annotations

from torch import nn


def param_groups(model: nn.Module, lr: float, weight_decay: float, layer_decay: float = 1.0,
                 decay_all: bool = False) -> list[dict]:
    """Groups keyed by (layer, decay?) over the parameters that train; each names its parameters."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    num_layers = getattr(model, "num_layers", 1)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = model.layer_id(name) if layer_decay != 1.0 and hasattr(model, "layer_id") else num_layers - 1
        decay = decay_all or not (name in skip or param.ndim <= 1)
        scale = layer_decay ** (num_layers - 1 - layer)
        group = groups.setdefault((layer, decay), {"params": [], "names": [], "lr": lr * scale, "lr_scale": scale,
                                                   "weight_decay": weight_decay if decay else 0.0})
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())
