"""Stopping cleanly when SLURM warns of the time limit, is told to stop, or preempts.

The handlers only set flags; the ranks read them when they next agree (every
``train.agree_every_steps`` steps, engine.py; ``dist.any_rank``: any rank signalled means all
save) and save. What follows depends on the signal:

- SIGUSR1, which ``slurm/pretrain.sh`` asks for before the time limit (``--signal``): rank 0
  requeues the job, which resumes by itself from that checkpoint;
- SIGTERM (``scancel``, or SLURM preempting the job, which then requeues it itself if the
  partition says so): the run stops after the save and does not requeue, so a cancelled
  job stays cancelled and SLURM's own requeue is never doubled.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess

log = logging.getLogger(__name__)


class PreemptionFlag:
    def __init__(self, signals: tuple[int, ...] = (signal.SIGUSR1, signal.SIGTERM)) -> None:
        self.requested = False  # save at the next agreement and stop
        self.requeue = False  # ... and put the job back in the queue (SIGUSR1 only)
        for sig in signals:
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True
        self.requeue = self.requeue or signum == signal.SIGUSR1
        log.warning("received %s: saving at the next agreement of the ranks, then %s", signal.Signals(signum).name,
                    "requeueing" if self.requeue else "stopping without a requeue")


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
