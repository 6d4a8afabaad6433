"""The part of an engine the training loop and the checkpointer use.

DeepSpeed's ``DeepSpeedEngine`` satisfies it as it is; so does the few-line fake engine the
unit tests drive the loop and the checkpoint rules with (tests/pretrain/fake_engine.py).
Everything else about DeepSpeed stays out of the loop and the checkpointer.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from ecgdist.data.dataset import ShardDataset


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


def on_engine(batch: dict, engine: TrainingEngine, data: ShardDataset) -> dict:
    """The batch on the engine's device, finished there (``ShardDataset.to_device``), its signal in
    the engine's compute precision (the bundled ZeRO configs run bf16 on GPUs); targets stay
    fp32, the losses are taken in fp32."""
    dtype = torch.bfloat16 if engine.bfloat16_enabled() else torch.float16 if engine.fp16_enabled() else None
    moved = data.to_device(batch, engine.device)
    if dtype is not None:
        moved["signal"] = moved["signal"].to(dtype)
    return moved
