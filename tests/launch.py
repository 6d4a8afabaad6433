"""Starting real ranks as separate processes (torchrun's variables), and reading TensorBoard back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ecgdist.dist import free_port
from ecgdist.tensorboard_log import read_scalars  # noqa: F401  (the tests' reader)


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


def read_image_tags(log_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in {p.parent for p in Path(log_dir).rglob("events.out.tfevents.*")}:
        acc = EventAccumulator(str(events), size_guidance={"images": 0})
        acc.Reload()
        tags |= set(acc.Tags()["images"])
    return tags
