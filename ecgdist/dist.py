"""Where this process sits in a distributed job, and setting up torch.distributed.

One place reads the three launchers users have: torchrun (RANK/WORLD_SIZE), SLURM's
srun (SLURM_PROCID inside a job step; submitit's SLURM jobs are srun steps too) and
submitit's local executor. With none of them this is a single process. Rendezvous is
always env:// from MASTER_ADDR/MASTER_PORT: no shared files, no ssh.
"""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

DEFAULT_PORT = 29500


@dataclass(frozen=True)
class DistEnv:
    rank: int
    local_rank: int
    world_size: int
    master_addr: str
    master_port: int
    launcher: str  # "torchrun", "slurm", "submitit-local" or "single"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list such as ``n[1-2]``, expanded by SLURM itself."""
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], check=True,
                         capture_output=True, text=True, timeout=30).stdout.split()
    return out[0]


def slurm_port(job_id: str) -> int:
    """A port derived from the job id, so that two jobs sharing a node do not collide."""
    return 20000 + int(job_id) % 20000


def read_dist_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    env = os.environ if environ is None else environ
    port = int(env.get("MASTER_PORT", DEFAULT_PORT))
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistEnv(int(env["RANK"]), int(env.get("LOCAL_RANK", 0)), int(env["WORLD_SIZE"]),
                       env.get("MASTER_ADDR", "127.0.0.1"), port, "torchrun")
    if "SLURM_STEP_ID" in env and "SLURM_PROCID" in env:
        nodelist = env.get("SLURM_STEP_NODELIST") or env["SLURM_JOB_NODELIST"]
        world = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS", 1))
        return DistEnv(int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", 0)), world,
                       env.get("MASTER_ADDR") or first_slurm_host(nodelist),
                       int(env.get("MASTER_PORT") or slurm_port(env["SLURM_JOB_ID"])), "slurm")
    if "SUBMITIT_LOCAL_GLOBALID" in env:
        return DistEnv(int(env["SUBMITIT_LOCAL_GLOBALID"]), int(env.get("SUBMITIT_LOCAL_LOCALID", 0)),
                       int(env.get("SUBMITIT_LOCAL_NTASKS", 1)), env.get("MASTER_ADDR", "127.0.0.1"),
                       port, "submitit-local")
    return DistEnv(0, 0, 1, "127.0.0.1", port, "single")


def export_dist_env(d: DistEnv) -> None:
    """Publish the layout in the torchrun variables that DeepSpeed and torch read."""
    os.environ.update(RANK=str(d.rank), LOCAL_RANK=str(d.local_rank), WORLD_SIZE=str(d.world_size),
                      MASTER_ADDR=d.master_addr, MASTER_PORT=str(d.master_port))


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed(d: DistEnv | None = None, backend: str | None = None,
                     timeout_s: float = 300, single_group: bool = False) -> DistEnv:
    """Initialise the default process group.

    One process gets no group unless ``single_group`` (DeepSpeed wants one even then; it
    gets a free port so that concurrent single runs do not collide). The timeout bounds
    how long a rank waits for a peer that crashed, so a dead rank ends the job instead of
    hanging it.
    """
    d = d or read_dist_env()
    if d.launcher == "single" and single_group and "MASTER_PORT" not in os.environ:
        d = DistEnv(0, 0, 1, "127.0.0.1", free_port(), "single")
    export_dist_env(d)
    if (d.world_size > 1 or single_group) and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(d.local_rank)
        dist.init_process_group(backend or default_backend(), rank=d.rank, world_size=d.world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
        log.info("rank %d/%d joined via %s (master %s:%d)", d.rank, d.world_size, d.launcher,
                 d.master_addr, d.master_port)
    return d


def collective_tensor(values: list[float]) -> torch.Tensor:
    """``values`` where the process group can reduce them: NCCL only reduces GPU tensors."""
    on_gpu = dist.get_backend() == "nccl"
    return torch.tensor(values, dtype=torch.float64, device=torch.cuda.current_device() if on_gpu else "cpu")


def any_rank(*flags: bool) -> list[bool]:
    """Each flag OR-ed over all ranks (a collective: every rank must call it)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(flags)
    values = collective_tensor([1.0 if f else 0.0 for f in flags])
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(v) for v in values.tolist()]


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a collective; any picklable value)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_rank0(value: Any) -> list[Any] | None:
    """Every rank's ``value`` (picklable), in rank order, on rank 0; None elsewhere (a collective)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def sum_over_ranks(*values: float) -> list[float]:
    """Each value summed over all ranks (a collective)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = collective_tensor(list(values))
    dist.all_reduce(t)
    return t.tolist()


def main() -> None:
    """``srun python -m ecgdist.dist``: check that every rank can reach every other.

    Each rank contributes rank + 1 to an all-reduce; every rank prints one JSON line with
    its layout and the sum, which must equal world_size * (world_size + 1) / 2.
    """
    import json
    import socket

    d = init_distributed(backend="gloo")
    total = torch.tensor([float(d.rank + 1)])
    if d.world_size > 1:
        dist.all_reduce(total)
        dist.destroy_process_group()
    print(json.dumps({"rank": d.rank, "local_rank": d.local_rank, "world_size": d.world_size,
                      "master_addr": d.master_addr, "launcher": d.launcher,
                      "node": os.environ.get("SLURMD_NODENAME", socket.gethostname()),
                      "allreduce_sum": total.item()}), flush=True)


if __name__ == "__main__":
    main()
