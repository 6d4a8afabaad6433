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
        time.sleep(0.25)
    subprocess.run(["scancel", job_id])
    raise TimeoutError(f"job {job_id} still {sacct_state(job_id)} after {timeout_s}s")


def release_once_requeued(job_id: str, timeout_s: float = 300) -> None:
    """Wait until the job is back in the queue after a requeue, then make it eligible at once.
    SLURM holds a requeued job about two minutes (Reason=BeginTime) before it may start again;
    an operator may lift that (``scontrol update StartTime=now``), so the test waits on the job
    itself, not on the hold. It lifts the hold a second after seeing it: slurmd refuses a job whose
    credential was made within the second its previous run's credential was revoked (it compares
    whole seconds), and the job then fails at once ("Job credential revoked")."""
    deadline, pending = time.time() + timeout_s, False
    while time.time() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True,
                               timeout=30).stdout.split()
        if state[:2] == ["PENDING", "BeginTime"]:
            time.sleep(1.1)
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=30)
            return
        pending = pending or state[:1] == ["PENDING"]
        if pending and state[:1] != ["PENDING"]:  # requeued without a hold: nothing to lift
            return
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} was not requeued within {timeout_s}s")
