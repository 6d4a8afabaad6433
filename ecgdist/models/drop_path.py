"""Stochastic depth: drop a whole residual branch per sample while training.

Not DropConnect (which drops single weights): a dropped sample passes through the block as
the identity. Survivors are scaled by 1 / keep so the expectation matches eval mode. The
mask has shape (B, 1, ..., 1), so one function serves 1-D signals and token sequences.
"""

from __future__ import annotations

import torch
from torch import nn


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate:.3f}"


def make_drop_path(rate: float) -> nn.Module:
    """The identity when the rate is zero, so forward passes carry no flags."""
    return DropPath(rate) if rate > 0 else nn.Identity()


def linear_rates(max_rate: float, count: int) -> list[float]:
    """Rates rising linearly from 0 at the first block to ``max_rate`` at the last."""
    if count <= 1:
        return [max_rate] * count
    return [max_rate * i / (count - 1) for i in range(count)]
