"""A fine-tune sweep: backbones x benchmark tasks x strategies x label fractions x seeds as submitit jobs.

One job each under ``run.dir/jobs/NAME``. ``auto`` submits to SLURM when ``sbatch``
exists, else runs jobs as local processes. The config is checked, and every file it names
must exist, before anything is submitted. Re-submitting skips finished jobs; unfinished
ones resume. The jobs come from plan.py, the checks from sweep_checks.py, the table's
header from header.py, the record of submissions from sweep_index.py.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from ecgdist.config import FinetuneConfig, load_config, save_resolved
from ecgdist.files import atomic_write_text
from ecgdist.finetune.external import unscored_tests
from ecgdist.finetune.header import banner, protocol
from ecgdist.finetune.job import (
    LABEL_FRACTIONS,
    WEIGHTS_RECORD,
    FinetuneJob,
    JobSpec,
    benchmark_of,
    fraction_key,
)
from ecgdist.finetune.local_runner import local_slots, run_local_queue, start_local_runner
from ecgdist.finetune.plan import executor_parameters, expand, make_executor
from ecgdist.finetune.results import read_result, write_results
from ecgdist.finetune.sweep_checks import check_inputs, check_same_sweep, check_same_weights
from ecgdist.finetune.sweep_index import job_state, last_error, read_index, read_runner, runner_alive, update_index
from ecgdist.processes import alive
from ecgdist.tasks.benchmark import task_splits, training_subset


def record_label_fractions(sweep_dir: Path, jobs: list[tuple[JobSpec, FinetuneConfig]]) -> None:
    """Write down, once, the training records of every label-fraction subset the jobs will use (by record
    id): every strategy and backbone, and every later extension of the sweep, trains on the same ones."""
    path = sweep_dir / LABEL_FRACTIONS
    recorded = json.loads(path.read_text()) if path.exists() else {}
    missing = {fraction_key(spec): (spec, job_cfg) for spec, job_cfg in jobs
               if spec.fraction < 1 and fraction_key(spec) not in recorded}
    for key, (spec, job_cfg) in missing.items():
        bench = benchmark_of(job_cfg, spec.benchmark)
        train = task_splits(job_cfg.data.corpus, bench.kind, spec.task, bench.classes, bench.mapping).splits["train"]
        recorded[key] = training_subset(train, spec.fraction, spec.seed).record_ids.tolist()
    if missing:
        atomic_write_text(path, json.dumps(recorded))


def tests_to_score(sweep_dir: Path, spec: JobSpec, job_cfg: FinetuneConfig) -> list[str]:
    """The external test sets a finished job has not scored (added to the sweep after it ran)."""
    return unscored_tests(benchmark_of(job_cfg, spec.benchmark), read_result(sweep_dir / "jobs" / spec.name))


def publish_results(cfg: FinetuneConfig, sweep_dir: Path) -> list[dict]:
    """Write results.csv/.md and the plots, and print results.md (with the SIMULATED banner if any)."""
    header = "\n\n".join(filter(None, [banner(cfg), protocol(cfg)]))
    rows = write_results(sweep_dir, header, cfg.finetune.bootstrap, simulated=bool(banner(cfg)))
    print((sweep_dir / "results.md").read_text())
    return rows


def submit_finetune(cfg: FinetuneConfig, cluster: str = "auto", wait: bool = False,
                    dry_run: bool = False) -> tuple[Path, list]:
    """Submit every job of the sweep that has no result and is not queued or running already."""
    check_inputs(cfg)
    sweep_dir = Path(cfg.run.dir)
    check_same_sweep(cfg, sweep_dir)
    weights = check_same_weights(cfg, sweep_dir)
    index = read_index(sweep_dir)
    todo, alive = [], []
    for spec, job_cfg in expand(cfg):
        state, _ = job_state(sweep_dir, spec.name, index.get(spec.name))
        if state == "completed" and tests_to_score(sweep_dir, spec, job_cfg):  # runs again only to score them
            state, _ = job_state(sweep_dir, spec.name, index.get(spec.name), by_result=False)
        if state in ("pending", "running"):
            alive.append(f"{spec.name} ({state}, job {index[spec.name].get('job_id') or 'queued'})")
        elif state != "completed":
            todo.append((spec, job_cfg))
    if dry_run:  # everything is checked; say what would be submitted
        print(f"sweep {sweep_dir}: {len(expand(cfg))} jobs, {len(todo)} would be submitted, each with")
        print("".join(f"  {key}: {value}\n" for key, value in executor_parameters(cfg).items()), end="")
        print("".join(f"  {spec.name}\n" for spec, _ in todo), end="")
        return sweep_dir, []
    save_resolved(cfg, sweep_dir)
    atomic_write_text(sweep_dir / WEIGHTS_RECORD, json.dumps(weights, indent=1))
    record_label_fractions(sweep_dir, todo)
    specs = [spec for spec, _ in todo]
    executor = make_executor(cfg, sweep_dir / "submitit", cluster)
    if executor.cluster == "local":
        return sweep_dir, submit_local(cfg, sweep_dir, specs, alive, wait)
    jobs = []
    if todo:
        with executor.batch():
            jobs = [executor.submit(FinetuneJob(job_cfg, spec, str(sweep_dir / "jobs" / spec.name)))
                    for spec, job_cfg in todo]
        update_index(sweep_dir, {spec.name: {"job_id": job.job_id, "cluster": executor.cluster}
                                 for spec, job in zip(specs, jobs)})
    print(f"sweep {sweep_dir}: {len(expand(cfg))} jobs, {len(specs)} submitted"
          + (f" ({jobs[0].job_id.split('_')[0]} ...)" if jobs else "")
          + (f", {len(alive)} still queued or running (not submitted again)" if alive else ""))
    for spec, job in zip(specs, jobs):
        print(f"  {job.job_id:>12}  {spec.name}")
    for line in alive:
        print(f"  {'':>12}  {line}")
    if wait:
        failures = []
        for spec, job in zip(specs, jobs):
            try:
                job.result()
            except Exception:  # a failed job is reported by its log's last error line; the others still count
                failures.append(f"{spec.name}: {last_error(sweep_dir, job.job_id)}")
        finish_wait(cfg, sweep_dir, failures, len(specs))
    return sweep_dir, jobs


def submit_local(cfg: FinetuneConfig, sweep_dir: Path, specs: list[JobSpec], alive: list[str], wait: bool) -> list[str]:
    """Queue the jobs; at most ``local_slots`` run at once. ``wait``: this process serves the queue;
    else a detached runner does (started unless one already runs), and this returns at once."""
    update_index(sweep_dir, {spec.name: {"queued": True, "cluster": "local"} for spec in specs})
    slots = local_slots(cfg)
    print(f"sweep {sweep_dir}: {len(expand(cfg))} jobs, {len(specs)} submitted"
          + (f", {len(alive)} still queued or running (not submitted again)" if alive else "")
          + f"; local queue: at most {len(slots)} at once (slurm.array_parallelism"
          + (", one per GPU)" if slots[0] is not None else ")"))
    for line in [spec.name for spec in specs] + alive:
        print(f"  {line}")
    if not wait:
        if specs and not runner_alive(sweep_dir):
            runner = start_local_runner(sweep_dir)
            print(f"local runner: pid {runner['pid']}, log {runner['log']}")
        return [spec.name for spec in specs]
    while runner_alive(sweep_dir):  # an earlier submission's runner serves the queue: wait for it
        time.sleep(1)
    run_local_queue(sweep_dir)
    index = read_index(sweep_dir)
    states = {spec.name: job_state(sweep_dir, spec.name, index.get(spec.name)) for spec in specs}
    failures = [f"{name}: {error}" for name, (state, error) in states.items() if state != "completed"]
    finish_wait(cfg, sweep_dir, failures, len(specs))
    return [spec.name for spec in specs]


def finish_wait(cfg: FinetuneConfig, sweep_dir: Path, failures: list[str], submitted: int) -> None:
    """After ``--wait``: the table, then the failed jobs' last error lines."""
    publish_results(cfg, sweep_dir)
    print(f"results: {sweep_dir / 'results.md'}  TensorBoard: tensorboard --logdir {sweep_dir / 'jobs'}")
    if failures:
        print("failed jobs:\n  " + "\n  ".join(failures), file=sys.stderr)
        raise JobsFailed(f"{len(failures)} of {submitted} jobs failed")


class JobsFailed(RuntimeError):
    """``--wait`` saw jobs fail; their last error lines were printed."""


def status(sweep_dir: Path) -> dict[str, str]:
    """Every job's state (from sacct, the local process or the local queue), with the last error line of failed ones."""
    cfg = load_config(FinetuneConfig, sweep_dir / "config.yaml")
    index = read_index(sweep_dir)
    runner = read_runner(sweep_dir)
    if runner:
        print(f"local runner: pid {runner['pid']} ({'running' if alive(runner['pid']) else 'ended'}), log {runner['log']}")
    states = {}
    for spec, job_cfg in expand(cfg):
        state, error = job_state(sweep_dir, spec.name, index.get(spec.name))
        states[spec.name] = state
        unscored = tests_to_score(sweep_dir, spec, job_cfg) if state == "completed" else []
        if unscored:  # a test set named since it finished: is a run scoring it queued or running?
            rescoring, _ = job_state(sweep_dir, spec.name, index.get(spec.name), by_result=False)
            error = f"to score on {', '.join(unscored)}: " + \
                (rescoring if rescoring in ("pending", "running") else "resubmit the sweep to score it")
        job_id = index.get(spec.name, {}).get("job_id") or "-"
        print(f"  {job_id:>12}  {state:13s} {spec.name}" + (f"\n{'':16}{error}" if error else ""))
    counts = Counter(states.values())
    print(f"{counts['completed']}/{len(states)} completed" + "".join(
        f", {n} {state}" for state, n in sorted(counts.items()) if state != "completed"))
    return states
