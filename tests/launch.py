"""Starting real ranks as separate processes (torchrun's variables), and reading TensorBoard back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from ecgdist.dist import free_port


def start_ranks(world_size: int, args: list[str], cwd: Path, log_dir: Path) -> list[subprocess.Popen]:
    port = str(free_port())
    procs = []
    for rank in range(world_size):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        out = open(log_dir / f"rank{rank}.log", "a")
        procs.append(subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT))
    return procs


def run_ranks(world_size: int, args: list[str], cwd: Path, log_dir: Path, timeout: float = 600) -> list[int]:
    procs = start_ranks(world_size, args, cwd, log_dir)
    return [p.wait(timeout=timeout) for p in procs]


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under ``log_dir``, read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list] = defaultdict(list)
    for events in sorted({p.parent for p in Path(log_dir).rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars[tag].extend((e.step, e.value) for e in acc.Scalars(tag))
    return {tag: sorted(values) for tag, values in scalars.items()}


def read_image_tags(log_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in {p.parent for p in Path(log_dir).rglob("events.out.tfevents.*")}:
        acc = EventAccumulator(str(events), size_guidance={"images": 0})
        acc.Reload()
        tags |= set(acc.Tags()["images"])
    return tags
