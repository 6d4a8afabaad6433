"""The commands tests run as users do (preprocess, pre-train, export), real ranks as separate
processes (torchrun's variables), and reading TensorBoard back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ecgdist.dist import free_port
from ecgdist.tensorboard_log import read_scalars  # noqa: F401  (the tests' reader)

REPO = Path(__file__).resolve().parents[1]
PRETRAIN_TINY = "configs/pretrain/ecgfounder_tiny.yaml"
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # two cores, several processes


def preprocess(*args, preexec_fn=None) -> subprocess.CompletedProcess:
    """``python -m preprocess ARGS``, its output captured for the test to read."""
    return subprocess.run([sys.executable, "-m", "preprocess", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, preexec_fn=preexec_fn)


def pretrain_args(corpus, run_dir, *overrides, config: str = PRETRAIN_TINY) -> list[str]:
    return ["-m", "ecgdist.pretrain", config, f"data.corpus={corpus}", f"run.dir={run_dir}", *overrides]


def pretrain(corpus, run_dir, *overrides, preexec_fn=None) -> subprocess.CompletedProcess:
    """One rank of ``python -m ecgdist.pretrain`` on the tiny Net1D config, output captured."""
    return subprocess.run([sys.executable, *pretrain_args(corpus, run_dir, *overrides)], cwd=REPO,
                          capture_output=True, text=True, env=ONE_THREAD, preexec_fn=preexec_fn)


def refused_pretrain(capsys, corpus, run_dir, *overrides) -> tuple[int, str]:
    """``python -m ecgdist.pretrain``'s ``main`` in this process, for a run refused before its rank
    joins a process group (checked: none is made); its exit code and stderr."""
    import torch.distributed as dist

    from ecgdist.pretrain.main import main

    code = main([PRETRAIN_TINY, f"data.corpus={corpus}", f"run.dir={run_dir}", *overrides])
    assert not dist.is_initialized()
    return code, capsys.readouterr().err


def export(run_dir, out) -> dict:
    """``python -m ecgdist.export RUN OUT``, and what it wrote."""
    import torch

    subprocess.run([sys.executable, "-m", "ecgdist.export", str(run_dir), str(out)], cwd=REPO, env=ONE_THREAD,
                   check=True, capture_output=True)
    return torch.load(out, weights_only=True)


def small_files(limit: int):
    """For ``preexec_fn``: writes past ``limit`` bytes fail with EFBIG, as they would with ENOSPC on a full disk."""
    import resource
    import signal

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def start_ranks(world_size: int, args: list[str], cwd: Path, log_dir: Path) -> list[subprocess.Popen]:
    port = str(free_port())
    procs = []
    for rank in range(world_size):
        env = {**ONE_THREAD, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
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
