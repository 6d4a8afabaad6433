"""The DeepSpeed JSON of a run, completed from the typed config.

The JSON under configs/deepspeed/ states the ZeRO stage and precision; the batch sizes
and clipping come from ``train.*`` so there is one source for each number. A JSON that
sets them differently is an error naming the key. bf16 is switched off when there is no
GPU (fp32 on CPU).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ecgdist.config import ConfigError, TrainSection


@dataclass(frozen=True)
class BatchLayout:
    """Derived once, logged once: how the global batch is made."""

    micro_batch: int
    grad_accum: int
    world_size: int

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size


def build_ds_config(path: str | Path, train: TrainSection, world_size: int) -> tuple[dict, BatchLayout]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config key 'deepspeed': {path} does not exist")
    ds = json.loads(path.read_text())
    layout = BatchLayout(train.micro_batch, train.grad_accum, world_size)
    ours = {"train_micro_batch_size_per_gpu": layout.micro_batch,
            "gradient_accumulation_steps": layout.grad_accum,
            "train_batch_size": layout.global_batch,
            "gradient_clipping": train.clip_grad_norm}
    for key, value in ours.items():
        if key in ds and ds[key] != value:
            raise ConfigError(f"{path} sets '{key}' to {ds[key]}, but the run config gives {value} "
                              "(batch sizes and clipping come from train.*)")
        ds[key] = value
    if not torch.cuda.is_available():
        ds.setdefault("bf16", {})["enabled"] = False
        ds.setdefault("fp16", {})["enabled"] = False
    return ds, layout


def zero_stage(ds: dict) -> int:
    return int(ds.get("zero_optimization", {}).get("stage", 0))
