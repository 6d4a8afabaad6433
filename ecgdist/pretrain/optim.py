"""Pre-training's optimizer and learning-rate schedule (parameter groups: ``ecgdist.models.param_groups``).

The schedule is DeepSpeed's own warm-up + cosine decay, which keeps each group's base
rate, so layer scales survive it; its warm-up is asked to be linear (lr_peak * step /
warmup_steps), as documented, not DeepSpeed's default logarithmic one.
"""

from __future__ import annotations

import torch

from ecgdist.config import TrainSection


def peak_lr(train: TrainSection, global_batch: int) -> float:
    """The peak learning rate: ``train.lr_peak``, or by MAE's rule from ``train.lr_base`` when set (the
    rate then follows the global batch: more GPUs, a proportionally higher rate)."""
    return train.lr_base * global_batch / 256 if train.lr_base > 0 else train.lr_peak


def build_adamw(groups: list[dict], lr: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    return torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=lr, betas=betas)


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_ratio: float):
    from deepspeed.runtime.lr_schedules import WarmupCosineLR

    return WarmupCosineLR(optimizer, total_num_steps=max(total_steps, warmup_steps + 1), warmup_min_ratio=0.0,
                          warmup_num_steps=max(1, warmup_steps), cos_min_ratio=min_ratio,
                          warmup_type="linear")  # DeepSpeed's default warm-up is logarithmic
