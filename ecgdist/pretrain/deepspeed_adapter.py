"""Everything ecgdist relies on from DeepSpeed, in one place.

The rest of pre-training sees an engine (``engine_interface.TrainingEngine``) and the names
here. Several are DeepSpeed internals rather than documented API: the files a checkpoint
folder holds, the classes its optimizer states pickle, how its config reader reads a JSON,
and the universal-conversion script's flags. setup.cfg pins the DeepSpeed range this was
tested with, and tests/pretrain/test_deepspeed_adapter.py exercises each detail by name, so a
release that changes one fails there, saying which.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import torch

from ecgdist.config import TrainSection

# Rank 0's model-states file, which holds the client state: ZeRO 0-2, then ZeRO-3.
MODEL_STATES = ("mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_model_states.pt")
OPTIMIZER_STATES = "*optim_states.pt"  # one per rank when the optimizer state is partitioned
LATEST = "latest"  # the pointer DeepSpeed's load_checkpoint follows when no tag is given
SHARED_MEMORY_OP = "deepspeed_shm_comm"  # the CPU backend's op for inference_all_reduce
# The collectives DeepSpeed's ZeRO stages call under names torch has deprecated; torch's warning comes
# again every few steps (64 lines a rank in a 10-step ZeRO-3 run), burying the training log.
DEPRECATED_COLLECTIVES = ("all_gather_into_tensor", "reduce_scatter_tensor")


def use_accelerator() -> None:
    """DeepSpeed picks its accelerator at import: the GPU when there is one, else the CPU (gloo)."""
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")


def initialize(model: torch.nn.Module, optimizer, scheduler, config: dict, train: TrainSection):
    """The engine, on the process group ecgdist.dist already made; with ``train.compile``, its module
    compiled in place (``torch.compile`` through the engine), so parameter names and checkpoints
    stay those of the eager model."""
    use_accelerator()
    import deepspeed

    skip_shared_memory_op()
    for name in DEPRECATED_COLLECTIVES:
        warnings.filterwarnings("ignore", message=rf"`torch\.distributed\.{name}` is deprecated", category=FutureWarning)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config,
                                      dist_init_required=False)
    if train.compile:
        compile_engine(engine, train)
    return engine


def skip_shared_memory_op() -> None:
    """On the CPU accelerator, DeepSpeed's communication set-up compiles a shared-memory all-reduce
    op (C++, 30 s on 2 cores, on each machine's first run and again whenever the ``ninja`` on PATH
    changes) that only ``inference_all_reduce`` uses; training never calls it and gloo does every
    collective either way. Marked incompatible in DeepSpeed's op table (a dict it keeps for the
    process, meant to be edited), the build is skipped."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__[SHARED_MEMORY_OP] = False


def compile_engine(engine, train: TrainSection) -> None:
    """``torch.compile`` of the engine's module in place, with ``train``'s backend and mode (a mode
    is inductor's option; other backends take none)."""
    engine.compile(backend=train.compile_backend,
                   compile_kwargs={"mode": train.compile_mode} if train.compile_backend == "inductor" else {})


class RecordingDict(dict):
    """A dict that remembers which keys were asked for (DeepSpeed's config reader reads with get/in/[])."""

    def __init__(self, *args, asked: set | None = None) -> None:
        super().__init__(*args)
        self.asked = set() if asked is None else asked

    def __copy__(self):
        return RecordingDict(self, asked=self.asked)

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.asked.add(key)
        return super().__contains__(key)


def keys_read(ds: dict) -> set[str]:
    """The top-level keys DeepSpeed's config reader asks for when it parses ``ds`` (as one rank);
    raises what the reader raises for a config it refuses."""
    use_accelerator()
    from deepspeed.runtime.config import DeepSpeedConfig

    recorded = RecordingDict(ds)
    DeepSpeedConfig(recorded)
    return recorded.asked


def state_types() -> list[type]:
    """The data classes DeepSpeed pickles into its checkpoint files (ZeRO optimizer states), which a
    ``weights_only`` read must be told about."""
    use_accelerator()
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [ZeroStageEnum, LossScaler, fragment_address]


def partitioned(tag_dir: Path) -> bool:
    """Whether a checkpoint's optimizer state is split per rank (ZeRO 1-3, bf16 stage 0)."""
    return any(Path(tag_dir).glob(OPTIMIZER_STATES))


def model_states(tag_dir: Path) -> Path:
    """Rank 0's model-states file of a checkpoint folder (the client state lives there)."""
    return next((Path(tag_dir) / name for name in MODEL_STATES if (Path(tag_dir) / name).exists()),
                Path(tag_dir) / MODEL_STATES[0])


def fp32_weights(checkpoints: Path, tag: str) -> dict[str, torch.Tensor]:
    """fp32 weights gathered offline from a partitioned checkpoint by DeepSpeed's own converter."""
    use_accelerator()
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    return get_fp32_state_dict_from_zero_checkpoint(str(checkpoints), tag=tag)


def universal_command(tag_dir: Path, out: Path) -> list[str]:
    """DeepSpeed's script that rewrites a checkpoint in its universal (rank-count-free) format."""
    return [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", str(tag_dir),
            "--output_folder", str(out), "--inject_missing_state", "--num_extract_workers", "1",
            "--num_merge_workers", "1"]
