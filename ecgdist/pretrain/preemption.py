"""Stopping cleanly when SLURM warns of preemption or the time limit, and requeueing.

``slurm/pretrain.sh`` asks for SIGUSR1 some minutes before the end (``--signal``);
SLURM's SIGTERM counts too. The handler only sets a flag; at the next step boundary the
ranks agree (``dist.any_rank``: any rank signalled means all save), save, and rank 0 requeues the job,
which then resumes by itself from that checkpoint.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess

log = logging.getLogger(__name__)


class PreemptionFlag:
    def __init__(self, signals: tuple[int, ...] = (signal.SIGUSR1, signal.SIGTERM)) -> None:
        self.requested = False
        for sig in signals:
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        log.warning("received %s: saving at the next step boundary", signal.Signals(signum).name)
        self.requested = True


def requeue_slurm_job() -> bool:
    """Put this SLURM job back in the queue; False outside SLURM."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return False
    # Say it first: the requeue ends this job step at once, and a line logged after it
    # may never reach the job's output file.
    log.warning("requeueing SLURM job %s; it resumes from the newest checkpoint", job)
    for handler in logging.getLogger().handlers:
        handler.flush()
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=60)
    return True
