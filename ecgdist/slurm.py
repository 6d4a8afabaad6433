"""Asking SLURM's accounting about a job, for the front end of both stages."""

from __future__ import annotations

import subprocess

# sacct's state words, as the front end says them.
STATES = {"PENDING": "pending", "REQUEUED": "pending", "RUNNING": "running", "COMPLETING": "running",
          "SUSPENDED": "running", "COMPLETED": "completed", "FAILED": "failed", "NODE_FAIL": "failed",
          "OUT_OF_MEMORY": "failed", "BOOT_FAIL": "failed", "CANCELLED": "cancelled", "TIMEOUT": "timed out",
          "PREEMPTED": "cancelled", "DEADLINE": "timed out"}


def sacct_state(job_id: str) -> str:
    """SLURM's accounting state of a job (PENDING, RUNNING, COMPLETED, FAILED, ...)."""
    try:
        out = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"], capture_output=True,
                             text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "unknown (no sacct)"
    lines = out.stdout.split()
    return lines[0] if out.returncode == 0 and lines else "unknown (not in sacct)"
