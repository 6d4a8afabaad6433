"""The part of an engine the training loop and the checkpointer use.

DeepSpeed's ``DeepSpeedEngine`` satisfies it as it is; so does the few-line fake engine the
unit tests drive the loop and the checkpoint rules with (tests/pretrain/fake_engine.py).
Everything else about DeepSpeed stays out of the loop and the checkpointer.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class TrainingEngine(Protocol):
    module: torch.nn.Module
    optimizer: Any  # a torch optimizer, or ZeRO's wrapper around one (``.optimizer``)
    device: torch.device

    def __call__(self, *inputs: torch.Tensor) -> Any: ...

    def backward(self, loss: torch.Tensor) -> None: ...

    def step(self) -> None:
        """One micro-batch done: the optimizer steps at the gradient-accumulation boundary."""

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def get_lr(self) -> list[float]: ...

    def get_global_grad_norm(self) -> float | None: ...

    def bfloat16_enabled(self) -> bool: ...

    def fp16_enabled(self) -> bool: ...

    def save_checkpoint(self, save_dir: str, tag: str, client_state: dict, save_latest: bool = True) -> Any: ...

    def load_checkpoint(self, load_dir: str, tag: str) -> tuple[str | None, dict]: ...
