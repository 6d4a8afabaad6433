"""Submitting a pre-training run to SLURM, and reading back where it stands.

``python -m ecgdist.submit pretrain CONFIG`` turns the config's ``slurm`` section into
``sbatch`` flags for slurm/pretrain.sh, after checking the config, the DeepSpeed JSON
and the corpus the way rank 0 of the job will. The run folder records every SLURM job
that worked on it (``slurm_jobs.json``, written at submission and by each start), so
``status RUN_DIR`` can ask ``sacct`` about the newest one and count restarts.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path

from ecgdist.config import REPO, PretrainConfig, PretrainSlurmSection, resolve_path, save_resolved
from ecgdist.dist import DistEnv
from ecgdist.files import atomic_write_text
from ecgdist.slurm import sacct_state
from ecgdist.tensorboard_log import read_scalars

SCRIPT = REPO / "slurm" / "pretrain.sh"
JOBS_FILE = "slurm_jobs.json"


def sbatch_flags(s: PretrainSlurmSection) -> list[str]:
    flags = [f"--nodes={s.nodes}", f"--ntasks-per-node={s.tasks_per_node}", f"--cpus-per-task={s.cpus_per_task}",
             f"--time={s.time_minutes}", f"--signal=USR1@{s.signal_seconds}"]
    if s.gpus_per_node:
        flags.append(f"--gpus-per-node={s.gpus_per_node}")
    if s.partition:
        flags.append(f"--partition={s.partition}")
    if s.account:
        flags.append(f"--account={s.account}")
    if s.mem_gb:
        flags.append(f"--mem={s.mem_gb}G")
    return flags + list(s.extra_flags)


def sbatch_command(cfg: PretrainConfig, config: str, overrides: list[str], wait: bool) -> list[str]:
    """The sbatch line: resources from ``slurm``, the job log in the run folder, the job's own arguments."""
    log = Path(cfg.run.dir).resolve() / "slurm-%j.out"
    return ["sbatch", *sbatch_flags(cfg.slurm), f"--output={log}", *(["--wait"] if wait else []),
            str(SCRIPT), str(resolve_path(config).resolve()), *overrides]


def check_job(cfg: PretrainConfig) -> str:
    """Everything rank 0 checks before training, for the world size the job will have; a summary line."""
    from ecgdist.pretrain.data import check_inputs

    world = cfg.slurm.nodes * cfg.slurm.tasks_per_node
    with warnings.catch_warnings():  # DataLoader's worker-count advice is about this machine, not the nodes
        warnings.simplefilter("ignore", UserWarning)
        _, layout, data = check_inputs(cfg, DistEnv(0, 0, world, "127.0.0.1", 0, "single"))
    return (f"{len(data.stream.sampler.shard_of)} training records, {len(data.labels)} labels, global batch "
            f"{layout.global_batch} on {world} ranks ({cfg.slurm.nodes} nodes x {cfg.slurm.tasks_per_node})")


def record_job(run_dir: Path, job_id: str, event: str) -> None:
    """Append a SLURM job event ("submitted", "started") to the run folder's job list."""
    path = run_dir / JOBS_FILE
    jobs = json.loads(path.read_text()) if path.exists() else []
    jobs.append({"job_id": job_id, "event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(jobs, indent=1))


def submit_pretrain(cfg: PretrainConfig, config: str, overrides: list[str], wait: bool, dry_run: bool) -> int:
    summary = check_job(cfg)
    command = sbatch_command(cfg, config, overrides, wait)
    print(f"checked: {summary}")
    if dry_run:
        print(shlex.join(command))
        return 0
    run_dir = Path(cfg.run.dir)
    save_resolved(cfg, run_dir)  # status can read the run before its first rank starts
    env = {**os.environ, "ECGDIST_PYTHON": os.environ.get("ECGDIST_PYTHON", sys.executable)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)  # the job runs where we are
    first = process.stdout.readline()  # "Submitted batch job N", printed before --wait blocks
    job_id = first.strip().split()[-1] if first.startswith("Submitted batch job") else ""
    if job_id:
        record_job(run_dir, job_id, "submitted")
    print(first.strip() + f" (log: {run_dir / f'slurm-{job_id}.out'})")
    code = process.wait()
    if wait:
        print_status(run_dir)
    return code


def last_logged(tb_dir: Path) -> tuple[int, float] | None:
    """The last (step, train/loss) in a run's TensorBoard events."""
    losses = read_scalars(tb_dir).get("train/loss")
    return losses[-1] if losses else None


def pretrain_status(run_dir: Path) -> dict:
    from ecgdist.pretrain.checkpoint import Checkpointer

    path = run_dir / JOBS_FILE
    jobs = json.loads(path.read_text()) if path.exists() else []
    job_id = jobs[-1]["job_id"] if jobs else None
    return {"job_id": job_id, "state": sacct_state(job_id) if job_id else "not submitted through SLURM",
            "restarts": max(0, sum(j["event"] == "started" for j in jobs) - 1),  # requeues and resubmissions
            "checkpoint": Checkpointer(run_dir / "checkpoints").newest_usable(),
            "last_logged": last_logged(run_dir / "tb")}


def print_status(run_dir: Path) -> dict:
    status = pretrain_status(run_dir)
    last = status["last_logged"]
    print(f"pre-training run {run_dir}\n  SLURM job {status['job_id'] or '-'}: {status['state']}, "
          f"{status['restarts']} restarts\n  newest complete checkpoint: {status['checkpoint'] or 'none'}\n"
          f"  last logged: " + (f"step {last[0]}, loss {last[1]:.4f}" if last else "nothing yet"))
    return status
