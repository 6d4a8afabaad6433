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
import time
from pathlib import Path

from ecgdist.pretrain.deepspeed_adapter import universal_command

log = logging.getLogger(__name__)
PREFIX = "universal-"


def universal_tag(tag: str) -> str:
    return PREFIX + tag


def failure_marker(tag_dir: Path) -> Path:
    return tag_dir.parent / f".{universal_tag(tag_dir.name)}.failed"


def convert(tag_dir: Path) -> Path:
    """The universal copy of ``tag_dir`` (made now unless an earlier run made it). A failure
    leaves a marker with the reason, so ranks waiting for the copy stop instead of hanging."""
    out = tag_dir.parent / universal_tag(tag_dir.name)
    if out.is_dir():
        return out
    for stale in tag_dir.parent.glob(f".{out.name}.tmp-*"):  # left by a conversion that crashed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = tag_dir.parent / f".{out.name}.tmp-{os.getpid()}"
    result = subprocess.run(universal_command(tag_dir, tmp), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = f"converting {tag_dir} to a universal checkpoint failed:\n{result.stderr[-3000:]}"
        failure_marker(tag_dir).write_text(reason)
        raise RuntimeError(reason)
    os.replace(tmp, out)
    log.info("wrote universal checkpoint %s", out.name)
    return out


def wait_for_conversion(tag_dir: Path, timeout_s: float = 24 * 3600, poll_s: float = 2.0) -> Path:
    """Wait, without a collective, for rank 0's conversion of ``tag_dir``: a large checkpoint
    takes longer than the process group's collective timeout. Raises when rank 0 failed."""
    out, marker = tag_dir.parent / universal_tag(tag_dir.name), failure_marker(tag_dir)
    started = time.time()
    while not out.is_dir():
        if marker.exists() and marker.stat().st_mtime >= started - 5:  # this job's failure, not an old one
            raise RuntimeError(marker.read_text())
        if time.time() - started > timeout_s:
            raise TimeoutError(f"no universal copy of {tag_dir} after {timeout_s:.0f} s")
        time.sleep(poll_s)
    return out
