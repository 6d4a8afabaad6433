"""The commands tests run as users do (preprocess, pre-train, export), real ranks as separate
processes (torchrun's variables), and reading TensorBoard back. Every command here is forked
from an interpreter that has imported DeepSpeed and ecgdist once (tests/forked.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import forked

from ecgdist.dist import free_port
from ecgdist.tensorboard_log import read_scalars  # noqa: F401  (the tests' reader)

REPO = Path(__file__).resolve().parents[1]
PRETRAIN_TINY = "configs/pretrain/ecgfounder_tiny.yaml"
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # two cores, several processes


def preprocess(*args, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """``python -m preprocess ARGS``, its output captured for the test to read."""
    return python_m("preprocess", *args, env=os.environ, file_size_limit=file_size_limit)


def start_preprocess(*args, output: Path) -> forked.Forked:
    """``python -m preprocess ARGS`` started, for a test that acts on it while it runs; its stdout and
    stderr in ``output``."""
    return forked.start(["-m", "preprocess", *map(str, args)], env=os.environ, cwd=REPO, stdout=output)


def python_m(module: str, *args, env: dict = ONE_THREAD, timeout: float = 900,
             file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in the checkout, forked from the preloaded interpreter, output captured
    (through files: a local job it starts inherits them and may outlive it). ``file_size_limit``:
    writes past it fail with EFBIG, as they would with ENOSPC on a full disk."""
    return forked.run(["-m", module, *map(str, args)], env=env, cwd=REPO, timeout=timeout,
                      file_size_limit=file_size_limit)


def pretrain_args(corpus, run_dir, *overrides, config: str = PRETRAIN_TINY) -> list[str]:
    return ["-m", "ecgdist.pretrain", config, f"data.corpus={corpus}", f"run.dir={run_dir}", *overrides]


def pretrain(corpus, run_dir, *overrides, file_size_limit: int | None = None,
             config: str = PRETRAIN_TINY) -> subprocess.CompletedProcess:
    """One rank of ``python -m ecgdist.pretrain`` on a tiny config (Net1D's unless ``config``), output
    captured (``file_size_limit`` as for python_m)."""
    return forked.run(pretrain_args(corpus, run_dir, *overrides, config=config), env=ONE_THREAD, cwd=REPO,
                      file_size_limit=file_size_limit)


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

    done = python_m("ecgdist.export", run_dir, out)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out, weights_only=True)


def start_ranks(world_size: int, args: list[str], cwd: Path, log_dir: Path) -> list[forked.Forked]:
    """``python ARGS`` as ranks 0..world_size-1 of one run, as torchrun would start them; each
    rank's output in ``log_dir/rankN.log``."""
    port = str(free_port())
    env = {**ONE_THREAD, "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    return [forked.start(args, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}, cwd=cwd,
                         stdout=log_dir / f"rank{rank}.log") for rank in range(world_size)]


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
