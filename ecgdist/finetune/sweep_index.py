"""A sweep folder's record of its submissions (sweep.json) and each job's state read from it:
SLURM's accounting, a local process, or the local queue.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from ecgdist.files import atomic_write_text
from ecgdist.finetune.job import RESULT
from ecgdist.processes import alive
from ecgdist.slurm import STATES, sacct_state

INDEX = "sweep.json"  # {job name: {"job_id", "cluster"} or {"queued": true, "cluster": "local"}, RUNNER: {...}}
RUNNER = "local_runner"  # the detached process that starts a local sweep's queued jobs (no job name is this)


def read_index(sweep_dir: Path) -> dict[str, dict]:
    """{job name: its record} of every submission (older folders stored the id alone)."""
    path = sweep_dir / INDEX
    index = json.loads(path.read_text()) if path.exists() else {}
    return {name: entry if isinstance(entry, dict) else {"job_id": entry, "cluster": "slurm"}
            for name, entry in index.items() if name != RUNNER}


def read_runner(sweep_dir: Path) -> dict | None:
    path = sweep_dir / INDEX
    return json.loads(path.read_text()).get(RUNNER) if path.exists() else None


def runner_alive(sweep_dir: Path) -> bool:
    runner = read_runner(sweep_dir)
    return bool(runner) and alive(runner["pid"])


def update_index(sweep_dir: Path, jobs: dict[str, dict], runner: dict | None = None) -> None:
    """Merge job records (and the runner's) into sweep.json under a lock: the submitting process and
    a local runner both write it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / f"{INDEX}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = sweep_dir / INDEX
        index = json.loads(path.read_text()) if path.exists() else {}
        index.update(jobs)
        if runner is not None:
            index[RUNNER] = runner
        atomic_write_text(path, json.dumps(index, indent=1))


def job_state(sweep_dir: Path, name: str, record: dict | None, by_result: bool = True) -> tuple[str, str]:
    """(pending | running | completed | failed | cancelled | timed out | not submitted, last error line);
    ``by_result`` False: the state of its last submission even if a result is there (a finished job
    submitted again to score test sets named since)."""
    if by_result and (sweep_dir / "jobs" / name / RESULT).exists():
        return "completed", ""
    if record is None:
        return "not submitted", ""
    if record.get("queued"):  # a local job waiting for a free slot: pending while a runner serves the queue
        return ("pending", "") if runner_alive(sweep_dir) else ("not submitted", "")
    if record["cluster"] == "slurm":
        word = sacct_state(record["job_id"]).split()[0]
        state = STATES.get(word, word.lower())
    else:  # submitit's local executor: the job id is the process id
        job_id = str(record["job_id"])
        state = "running" if job_id.isdigit() and alive(int(job_id)) else "failed"
    if state == "completed":  # SLURM says so, but the job wrote no result
        state = "failed"
    return state, last_error(sweep_dir, record["job_id"]) if state in ("failed", "cancelled", "timed out") else ""


def last_error(sweep_dir: Path, job_id: str) -> str:
    log = sweep_dir / "submitit" / f"{job_id}_0_log.err"
    # A Python traceback ends with its one unindented "Type: message" line; submitit logs around it.
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip() and not ln[0].isspace()
             and not ln.startswith(("submitit ", "INFO:", "WARNING:", "ERROR:", "Traceback"))] if log.exists() else []
    return lines[-1].strip() if lines else f"(nothing in {log.name})"
