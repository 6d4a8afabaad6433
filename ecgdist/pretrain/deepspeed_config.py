"""The DeepSpeed JSON of a run, completed from the typed config.

The JSON under configs/deepspeed/ states the ZeRO stage and precision; the batch sizes
and clipping come from ``train.*`` so there is one source for each number. A JSON that
sets them differently is an error naming the key. bf16 is switched off when there is no
GPU (fp32 on CPU).

DeepSpeed ignores top-level keys it does not know, so a misspelled ``zero_optimisation``
would silently train without ZeRO: the JSON is read once by DeepSpeed's own config parser
before any rank starts, every key it never asks for is an error naming the file (with the
nearest known key), and so is anything its parser refuses (an invalid stage, a misspelled
nested key). ``optimizer`` and ``scheduler`` sections are refused too: ecgdist builds both
from ``train.*`` and DeepSpeed would silently replace them.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ecgdist.config import ConfigError, TrainSection
from ecgdist.pretrain.deepspeed_adapter import keys_read


@dataclass(frozen=True)
class BatchLayout:
    """Derived once, logged once: how the global batch is made."""

    micro_batch: int
    grad_accum: int
    world_size: int

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size


def check_with_deepspeed(ds: dict, path: Path) -> None:
    """Parse ``ds`` with DeepSpeed's config reader (as one rank); unknown or refused keys name the file."""
    for section in ("optimizer", "scheduler"):
        if section in ds:
            raise ConfigError(f"{path}: remove the '{section}' section: ecgdist builds the optimizer and the "
                              "learning-rate schedule from train.* (DeepSpeed would replace them)")
    single = {**ds, "train_batch_size": ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"]}
    try:
        asked = keys_read(single)
    except Exception as error:  # pydantic and assertion errors alike: a config DeepSpeed refuses
        first = str(error).strip().splitlines()
        raise ConfigError(f"{path}: DeepSpeed refuses it: {' '.join(first[:3])}") from None
    unknown = sorted(set(ds) - asked)
    if unknown:
        hints = [f"'{key}'" + (f" (did you mean '{close[0]}'?)" if (close := difflib.get_close_matches(
            key, sorted(asked), n=1)) else "") for key in unknown]
        raise ConfigError(f"{path}: DeepSpeed does not know the key {', '.join(hints)} and would ignore it")


def build_ds_config(path: str | Path, train: TrainSection, world_size: int) -> tuple[dict, BatchLayout]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config key 'deepspeed': {path} does not exist")
    try:
        ds = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"config key 'deepspeed': {path} is not valid JSON (line {error.lineno}, column "
                          f"{error.colno}: {error.msg})") from None
    if not isinstance(ds, dict):
        raise ConfigError(f"config key 'deepspeed': {path} must hold a JSON object")
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
    check_with_deepspeed(ds, path)
    if not torch.cuda.is_available():
        ds.setdefault("bf16", {})["enabled"] = False
        ds.setdefault("fp16", {})["enabled"] = False
    return ds, layout

