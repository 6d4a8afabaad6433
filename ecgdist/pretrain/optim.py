"""Optimizer parameter groups and the learning-rate schedule.

AdamW never decays norms, biases or embeddings (the model's ``no_weight_decay``).
Layer-wise LR decay scales layer i of n by decay ** (n - 1 - i), so the head learns at
the full rate and the stem slowest. The schedule is DeepSpeed's own warm-up + cosine
decay, which keeps each group's base rate, so the layer scales survive it; its warm-up is
asked to be linear (lr_peak * step / warmup_steps), as documented, not DeepSpeed's
default logarithmic one.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgdist.config import TrainSection


def peak_lr(train: TrainSection, global_batch: int) -> float:
    """The peak learning rate: ``train.lr_peak``, or by MAE's rule from ``train.lr_base`` when set (the
    rate then follows the global batch: more GPUs, a proportionally higher rate)."""
    return train.lr_base * global_batch / 256 if train.lr_base > 0 else train.lr_peak


def param_groups(model: nn.Module, lr: float, weight_decay: float, layer_decay: float = 1.0,
                 frozen: set[str] = frozenset(), decay_all: bool = False) -> list[dict]:
    """Groups keyed by (layer, decay?); parameters named in ``frozen`` are left out.
    ``decay_all`` decays norms and biases too (the released ECGFounder fine-tune recipe)."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    num_layers = getattr(model, "num_layers", 1)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad or name in frozen:
            continue
        layer = model.layer_id(name) if layer_decay != 1.0 and hasattr(model, "layer_id") else num_layers - 1
        decay = decay_all or not (name in skip or param.ndim <= 1)
        scale = layer_decay ** (num_layers - 1 - layer)
        group = groups.setdefault((layer, decay), {"params": [], "names": [], "lr": lr * scale, "lr_scale": scale,
                                                   "weight_decay": weight_decay if decay else 0.0})
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def build_adamw(groups: list[dict], lr: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    return torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=lr, betas=betas)


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_ratio: float):
    from deepspeed.runtime.lr_schedules import WarmupCosineLR

    return WarmupCosineLR(optimizer, total_num_steps=max(total_steps, warmup_steps + 1), warmup_min_ratio=0.0,
                          warmup_num_steps=max(1, warmup_steps), cos_min_ratio=min_ratio,
                          warmup_type="linear")  # DeepSpeed's default warm-up is logarithmic
