"""``python -m ecgdist.finetune.local_runner SWEEP_DIR``: serves a local sweep's queue.

``python -m ecgdist.submit finetune ... --cluster local`` starts it detached and returns;
it starts queued jobs as slots free (``slurm.array_parallelism``, one per GPU) and exits
when none is queued or running. Its pid and log are in the sweep folder's sweep.json.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from ecgdist.config import FinetuneConfig, load_config
from ecgdist.finetune.job import FinetuneJob
from ecgdist.finetune.plan import expand, make_executor
from ecgdist.finetune.sweep_index import read_index, update_index

log = logging.getLogger(__name__)


def local_slots(cfg: FinetuneConfig) -> list[int | None]:
    """One entry per job a local sweep may run at once: ``slurm.array_parallelism``, and on a machine
    with GPUs at most one job per visible GPU (the entry: the GPU it is pinned to)."""
    import torch

    gpus = torch.cuda.device_count()
    return list(range(min(gpus, cfg.slurm.array_parallelism))) if gpus else [None] * cfg.slurm.array_parallelism


def run_local_queue(sweep_dir: Path, poll_s: float = 0.5) -> None:
    """Start the sweep's queued local jobs as slots free, until none is queued or running. Reads
    sweep.json and config.yaml again each round, so a resubmission that extends the sweep is served."""
    running: dict[str, tuple[object, int | None]] = {}
    while True:
        running = {name: (job, slot) for name, (job, slot) in running.items() if not job.done()}
        queued = [name for name, record in read_index(sweep_dir).items() if record.get("queued")]
        if not queued and not running:
            return
        cfg = load_config(FinetuneConfig, sweep_dir / "config.yaml")
        specs = {spec.name: (spec, job_cfg) for spec, job_cfg in expand(cfg)}
        slots, used = local_slots(cfg), [slot for _, slot in running.values()]
        free = [slot for slot in slots if slot is None or slot not in used][:len(slots) - len(running)]
        for name, slot in zip(queued, free):
            spec, job_cfg = specs[name]
            executor = make_executor(cfg, sweep_dir / "submitit", "local")
            if slot is not None:
                executor.update_parameters(visible_gpus=(slot,), gpus_per_node=1)
            job = executor.submit(FinetuneJob(job_cfg, spec, str(sweep_dir / "jobs" / name)))
            update_index(sweep_dir, {name: {"job_id": job.job_id, "cluster": "local"}})
            running[name] = (job, slot)
            log.info("started %s (pid %s%s); %d running, %d queued", name, job.job_id,
                     "" if slot is None else f", GPU {slot}", len(running), len(queued) - len(free))
        time.sleep(poll_s)


def start_local_runner(sweep_dir: Path) -> dict:
    """A detached process serving the queue (it outlives ``submit``), its log in the sweep folder."""
    log_path = sweep_dir / "local_runner.log"
    with open(log_path, "a") as log:
        process = subprocess.Popen([sys.executable, "-m", "ecgdist.finetune.local_runner", str(sweep_dir)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    runner = {"pid": process.pid, "log": str(log_path)}
    update_index(sweep_dir, {}, runner)
    return runner


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    (sweep_dir,) = sys.argv[1:] if argv is None else argv
    run_local_queue(Path(sweep_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
