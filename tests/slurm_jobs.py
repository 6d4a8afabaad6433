"""Submitting to the local SLURM cluster and waiting for the outcome, as sacct reports it."""

from __future__ import annotations

import subprocess
import time

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"}


def sbatch(*args: str, cwd=None, env=None) -> str:
    out = subprocess.run(["sbatch", "--parsable", *args], check=True, capture_output=True,
                         text=True, cwd=cwd, env=env, timeout=60)
    return out.stdout.strip().split(";")[0]


def sacct_state(job_id: str) -> str:
    out = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"],
                         capture_output=True, text=True, timeout=30).stdout.split()
    return out[0].split()[0] if out else "UNKNOWN"


def in_queue(job_id: str) -> bool:
    """Still pending, running or completing: a cancelled job's steps keep running (up to
    KillWait) after sacct already says CANCELLED, and may still be saving."""
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return bool(out.stdout.strip())


def wait_for_job(job_id: str, timeout_s: float = 600) -> str:
    """Poll until the job reaches a final state and none of its processes are left; returns
    that state as sacct reports it."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        state = sacct_state(job_id)
        if state in FINAL_STATES and not in_queue(job_id):
            return state
        time.sleep(1)
    subprocess.run(["scancel", job_id])
    raise TimeoutError(f"job {job_id} still {sacct_state(job_id)} after {timeout_s}s")
