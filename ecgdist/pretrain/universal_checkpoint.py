"""Resuming on a different number of ranks, through DeepSpeed's universal checkpoint.

ZeRO (and bf16 stage 0) store the optimizer state in one partition per rank, so a
checkpoint written by 4 ranks cannot be loaded as it is by 2: a job requeued onto fewer
nodes, or moved to a bigger allocation, would be stuck. DeepSpeed's ``ds_to_universal``
rewrites such a checkpoint as one file per parameter (fp32 weights and Adam moments),
which any number of ranks can load with ``checkpoint.load_universal``. Rank 0 converts
once, into ``universal-<tag>`` beside the original, through a temporary folder renamed
into place, so a crash mid-conversion leaves nothing that looks finished.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)
PREFIX = "universal-"


def partitioned(tag_dir: Path) -> bool:
    """Whether the optimizer state is split per rank (ZeRO 1-3, bf16 stage 0)."""
    return any(tag_dir.glob("*optim_states.pt"))


def universal_tag(tag: str) -> str:
    return PREFIX + tag


def convert(tag_dir: Path) -> Path:
    """The universal copy of ``tag_dir`` (made now unless an earlier run made it)."""
    out = tag_dir.parent / universal_tag(tag_dir.name)
    if out.is_dir():
        return out
    for stale in tag_dir.parent.glob(f".{out.name}.tmp-*"):  # left by a conversion that crashed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = tag_dir.parent / f".{out.name}.tmp-{os.getpid()}"
    command = [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", str(tag_dir),
               "--output_folder", str(tmp), "--inject_missing_state",
               "--num_extract_workers", "1", "--num_merge_workers", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"converting {tag_dir} to a universal checkpoint failed:\n{result.stderr[-3000:]}")
    os.replace(tmp, out)
    log.info("wrote universal checkpoint %s", out.name)
    return out
