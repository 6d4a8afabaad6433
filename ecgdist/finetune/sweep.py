"""A fine-tune sweep: backbones x benchmark tasks x strategies x label fractions x seeds as submitit jobs.

One job each under ``run.dir/jobs/NAME``. ``auto`` submits to SLURM when ``sbatch``
exists, else runs jobs as local processes. The config is checked, and every file it names
must exist, before anything is submitted. Re-submitting skips finished jobs; unfinished
ones resume.
"""

from __future__ import annotations

import dataclasses
import fcntl
import itertools
import json
import logging
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from ecgdist.config import ConfigError, FinetuneConfig, load_config, save_resolved, to_dict
from ecgdist.data.dataset import ShardCorpus
from ecgdist.data.index import split_record
from ecgdist.data.shards import read_manifest
from ecgdist.data.transforms import check_crop
from ecgdist.files import atomic_write_text
from ecgdist.finetune.job import (
    LABEL_FRACTIONS,
    RESULT,
    WEIGHTS_RECORD,
    FinetuneJob,
    JobSpec,
    benchmark_of,
    fraction_key,
    stages,
)
from ecgdist.finetune.provenance import pretraining_data, weights_sha256
from ecgdist.finetune.results import write_results
from ecgdist.finetune.weights import check_weights
from ecgdist.models.hub import PREFIX as HUB_PREFIX
from ecgdist.processes import alive
from ecgdist.slurm import STATES, sacct_state
from ecgdist.tasks.benchmark import TASKS, NoFolds, task_splits, training_subset
from ecgdist.tasks.linear_fit import C_GRID

log = logging.getLogger(__name__)
SIMULATED_BANNER = "**SIMULATED ECGs: a built-in synthetic corpus, not PTB-XL. These numbers say nothing about real ECGs.**"


def backbones(cfg: FinetuneConfig) -> list[tuple[str, FinetuneConfig]]:
    """(label, the config its jobs run with) per backbone: ``model``, ``finetune.weights`` and its own
    corpus and ``finetune`` keys set from it."""
    if not cfg.sweep.backbones:
        return [("", cfg)]
    return [(b.name, dataclasses.replace(
        cfg, model=b.model, data=dataclasses.replace(cfg.data, corpus=b.corpus or cfg.data.corpus),
        finetune=dataclasses.replace(cfg.finetune, **b.finetune, weights=b.weights)))
        for b in cfg.sweep.backbones]


@dataclasses.dataclass
class BenchmarkRun:
    """The jobs of one backbone on one benchmark."""

    backbone: str
    benchmark: str  # "": PTB-XL's sweep.tasks
    tasks: list[str]
    cfg: FinetuneConfig  # the config those jobs run with; data.corpus is the benchmark's corpus
    corpus_key: str  # the config key that named that corpus


def benchmark_runs(cfg: FinetuneConfig) -> list[BenchmarkRun]:
    """Every backbone on PTB-XL's ``sweep.tasks`` (its own corpus), then on each of ``sweep.benchmarks``
    (the benchmark's corpus, or the one the backbone names for it in ``corpora``)."""
    own = {b.name: b for b in cfg.sweep.backbones}
    runs = []
    for name, job_cfg in backbones(cfg):
        if cfg.sweep.tasks:
            key = f"sweep.backbones ({name}) corpus" if name and own[name].corpus else "data.corpus"
            runs.append(BenchmarkRun(name, "", list(cfg.sweep.tasks), job_cfg, key))
        for bench in cfg.sweep.benchmarks:
            corpus, key = bench.corpus, f"sweep.benchmarks ({bench.name}) corpus"
            if name and bench.name in own[name].corpora:
                corpus, key = own[name].corpora[bench.name], f"sweep.backbones ({name}) corpora ({bench.name})"
            runs.append(BenchmarkRun(name, bench.name, list(bench.tasks or TASKS[bench.kind]),
                                     dataclasses.replace(job_cfg, data=dataclasses.replace(job_cfg.data, corpus=corpus)),
                                     key))
    return runs


def expand(cfg: FinetuneConfig) -> list[tuple[JobSpec, FinetuneConfig]]:
    s = cfg.sweep
    return [(JobSpec(task, strategy, fraction, seed, run.backbone, run.benchmark), run.cfg)
            for run in benchmark_runs(cfg)
            for task, strategy, fraction, seed in itertools.product(run.tasks, s.strategies, s.fractions, s.seeds)]


def check_inputs(cfg: FinetuneConfig) -> None:
    """Files named by the config exist, every benchmark has its folds and tasks, and every backbone's
    weights may be used on each benchmark's corpus: fail here, not in a job."""
    needs_weights = any(s in ("baseline", "post_training", "linear", "linear_fit") for s in cfg.sweep.strategies)
    frozen = [s for s in ("linear", "linear_fit") if s in cfg.sweep.strategies]
    for run in benchmark_runs(cfg):
        name, bench, job_cfg = run.backbone, run.benchmark, run.cfg
        corpus = open_benchmark_corpus(run)
        key = f"sweep.backbones ({name}) weights" if name else "finetune.weights"
        weights = job_cfg.finetune.weights
        if weights and not weights.startswith(HUB_PREFIX) and not Path(weights).exists():
            raise ConfigError(f"config key '{key}': {weights} does not exist")
        if frozen and not weights:
            raise ConfigError(f"config key '{key}' is empty, but strategy {frozen[0]} evaluates pre-trained features")
        if needs_weights and not weights:
            print(f"note: {key} is empty: baseline and post_training start from random weights")
        if needs_weights and weights:
            try:
                _, extra = check_weights(job_cfg, corpus)
            except ConfigError as error:
                raise ConfigError(str(error).replace("config key 'finetune.weights'", f"config key '{key}'")) from None
            checked = pretraining_data(weights, extra, job_cfg.data.corpus, job_cfg.finetune.allow_overlap)
            print(f"pre-training data{f' of {name}' if name else ''} vs {bench or 'ptbxl'} folds 9-10: "
                  f"{checked['status']}: {checked['detail']}")


def open_benchmark_corpus(run: BenchmarkRun) -> ShardCorpus:
    """The run's corpus, checked: its manifest and shard sizes, a window that fits ``data.crop_samples``,
    the benchmark's tasks and tables, folds (its own or made), and records in each split of every task."""
    cfg, key = run.cfg, run.corpus_key
    try:
        corpus = ShardCorpus(cfg.data.corpus)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"config key '{key}': {error}") from None
    check_crop(cfg.data.crop_samples, corpus.manifest.recipe.samples, cfg.data.corpus)
    benchmark = benchmark_of(cfg, run.benchmark)
    if benchmark.kind == "ptbxl" and not (Path(cfg.data.corpus) / "scp_statements.csv").exists():
        raise ConfigError(f"config key '{key}': {cfg.data.corpus} has no scp_statements.csv (not a PTB-XL corpus)")
    where = f"sweep.benchmarks ({run.benchmark}) tasks" if run.benchmark else "sweep.tasks"
    for task in run.tasks:
        try:
            splits = task_splits(cfg.data.corpus, benchmark.kind, task, benchmark.classes, benchmark.mapping).splits
        except NoFolds as error:
            raise ConfigError(f"config key '{key}': {error}") from None
        except (OSError, ValueError) as error:
            raise ConfigError(f"config key '{where}': {error}") from None
        empty = [name for name, split in splits.items() if not len(split.indices)]
        if empty:
            raise ConfigError(f"config key '{where}': task {task} has no {' or '.join(empty)} records in "
                              f"{cfg.data.corpus} (train: folds 1-8, val: 9, test: 10)")
    return corpus


def banner(cfg: FinetuneConfig) -> str:
    simulated = any(read_manifest(run.cfg.data.corpus).extra.get("simulated") for run in benchmark_runs(cfg))
    return SIMULATED_BANNER if simulated else ""


def protocol(cfg: FinetuneConfig) -> str:
    """What a reader of the table needs to know about how its numbers were made."""
    ft = cfg.finetune
    epochs = {strategy: sum(n for _, n in stages(ft, strategy)) for strategy in cfg.sweep.strategies
              if strategy != "linear_fit"}
    probe = dict(stages(ft, "post_training")).get("probe", 0)
    return ("Macro AUROC / AUPRC on each benchmark's fold 10 (models selected on fold 9; "
            + "; ".join(fold_sources(cfg)) + "), mean ± sd over seeds "
            f"{', '.join(map(str, cfg.sweep.seeds))}; [90 % CI]: 5th-95th percentile of the seed mean over "
            f"{ft.bootstrap} resamples of the test records that keep every scored class (as the PTB-XL benchmark). "
            f"Epochs: " + ", ".join(f"{s} {n}" for s, n in epochs.items())
            + (f" (post_training: {probe} probe + {ft.epochs} full)" if "post_training" in epochs else "")
            + f"; finetune.match_epochs={str(ft.match_epochs).lower()}"
            + (". linear_fit: no epochs, one logistic regression per class on the frozen pooled features, C from "
               f"{', '.join(map(str, C_GRID))} by fold 9's macro AUROC" if "linear_fit" in cfg.sweep.strategies else "")
            + ". Inputs: " + "; ".join(inputs(cfg))
            + ". Recipes: " + "; ".join(recipes(cfg)) + ".")


def fold_sources(cfg: FinetuneConfig) -> list[str]:
    """Where each benchmark's folds come from: the corpus's own, or the split ``preprocess split`` made."""
    described = {}
    for run in benchmark_runs(cfg):
        record = split_record(run.cfg.data.corpus)
        made = f"folds made by preprocess split, seed {record['seed']}, sha256 {record['sha256'][:12]}" if record \
            else "the corpus's own folds"
        described.setdefault(run.benchmark or "ptbxl", f"{run.benchmark or 'ptbxl'}: {made}")
    return list(described.values())


def recipes(cfg: FinetuneConfig) -> list[str]:
    """Each backbone's fine-tuning recipe, as the table's header states it."""
    described = []
    for name, job_cfg in backbones(cfg):
        ft = job_cfg.finetune
        schedule = f"cosine after {ft.warmup_epochs} warm-up epochs" if ft.schedule == "cosine" else \
            f"plateau (patience {ft.plateau_patience})"
        described.append(f"{name + ': ' if name else ''}{ft.optimizer} lr {ft.lr:g} weight decay {ft.weight_decay:g}"
                         + (f" layer decay {ft.layer_decay:g}" if ft.layer_decay < 1 else "")
                         + (" (scratch: none)" if ft.layer_decay < 1 and "scratch" in cfg.sweep.strategies else "")
                         + f", {schedule}, "
                         f"drop path {ft.baseline_drop_path:g} (post_training {ft.drop_path:g}), batch {ft.batch_size}")
    return described


def inputs(cfg: FinetuneConfig) -> list[str]:
    """Each backbone's corpus recipe on each benchmark, as the table's header states it."""
    described = []
    for run in benchmark_runs(cfg):
        label = ", ".join(filter(None, [run.backbone, run.benchmark or "ptbxl" if cfg.sweep.benchmarks else ""]))
        label += ": " * bool(label)
        corpus = run.cfg.data.corpus
        if not (Path(corpus) / "manifest.json").exists():
            described.append(f"{label}{corpus} (no corpus there yet)")
            continue
        manifest = read_manifest(corpus)
        r = manifest.recipe
        described.append(f"{label}{r.rate_hz} Hz, {r.seconds:g} s, filter {r.filter}, "
                         f"{len(run.cfg.data.leads)} leads, normalize {run.cfg.data.normalize}, "
                         f"{r.source} version {manifest.extra.get('source_version', 'unknown')}")
    return described


def publish_results(cfg: FinetuneConfig, sweep_dir: Path) -> list[dict]:
    """Write results.csv/.md and the plots, and print results.md (with the SIMULATED banner if any)."""
    header = "\n\n".join(filter(None, [banner(cfg), protocol(cfg)]))
    rows = write_results(sweep_dir, header, cfg.finetune.bootstrap, simulated=bool(banner(cfg)))
    print((sweep_dir / "results.md").read_text())
    return rows


def executor_parameters(cfg: FinetuneConfig) -> dict:
    """What every job of the sweep asks SLURM for (submitit's parameter names)."""
    s = cfg.slurm
    params = dict(name="ecgdist-finetune", timeout_min=s.time_minutes, cpus_per_task=s.cpus_per_task,
                  slurm_array_parallelism=s.array_parallelism, slurm_signal_delay_s=s.signal_seconds)
    if s.gpus_per_node:
        params["gpus_per_node"] = s.gpus_per_node
    if s.partition:
        params["slurm_partition"] = s.partition
    if s.mem_gb:
        params["mem_gb"] = s.mem_gb
    if s.account:
        params["slurm_account"] = s.account
    if s.extra_flags:
        params["slurm_additional_parameters"] = s.flag_items()
    return params


def make_executor(cfg: FinetuneConfig, folder: Path, cluster: str):
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=None if cluster == "auto" else cluster)
    executor.update_parameters(**executor_parameters(cfg))
    return executor


def check_same_sweep(cfg: FinetuneConfig, sweep_dir: Path) -> None:
    """A sweep folder's results belong to the config that made them: re-submitting with other
    settings would label old numbers with new ones. Adding tasks, strategies, fractions, seeds,
    backbones or benchmarks extends the sweep; changing anything else needs a new run.dir."""
    saved_path = sweep_dir / "config.yaml"
    if not saved_path.exists():
        return
    saved, now = to_dict(load_config(FinetuneConfig, saved_path)), to_dict(cfg)
    for d in (saved, now):
        d.pop("slurm"), d["data"].pop("workers")
        d["sweep"] = fixed_sweep_parts(d["sweep"])
    changed = [f"{section}.{key}" for section in now if section != "sweep" for key in now[section]
               if saved[section].get(key) != now[section][key]]
    changed += [f"sweep.{kind} ({name})" for kind, name in now["sweep"] if (kind, name) in saved["sweep"]
                and saved["sweep"][kind, name] != now["sweep"][kind, name]]
    if changed:
        raise ConfigError(f"sweep folder {sweep_dir} holds results of another config ({', '.join(changed)} differ); "
                          "use a new run.dir for these settings")


def fixed_sweep_parts(sweep: dict) -> dict[tuple[str, str], dict]:
    """What of ``sweep.*`` a resubmission may not change: each backbone, each benchmark but its tasks."""
    parts = {("backbones", b["name"]): b for b in sweep["backbones"]}
    parts.update({("benchmarks", b["name"]): {k: v for k, v in b.items() if k != "tasks"}
                  for b in sweep.get("benchmarks", ())})
    return parts


def backbone_weights(cfg: FinetuneConfig) -> dict[str, dict]:
    """{backbone: {"weights": path or Hub reference, "sha256": of the file}} for every backbone with weights."""
    return {name or cfg.model.name: {"weights": job_cfg.finetune.weights,
                                     "sha256": weights_sha256(job_cfg.finetune.weights)}
            for name, job_cfg in backbones(cfg) if job_cfg.finetune.weights}


def check_same_weights(cfg: FinetuneConfig, sweep_dir: Path) -> dict[str, dict]:
    """A row averages jobs of one model: weights replaced behind an unchanged path (a new seed
    added later would train on the new file) are refused. Returns the record to keep."""
    path = sweep_dir / WEIGHTS_RECORD
    saved = json.loads(path.read_text()) if path.exists() else {}
    now = backbone_weights(cfg)
    changed = [f"{name} ({entry['weights']}: sha256 {saved[name]['sha256'][:12]}... then, {entry['sha256'][:12]}... "
               "now)" for name, entry in now.items() if name in saved and saved[name] != entry]
    if changed:
        raise ConfigError(f"sweep folder {sweep_dir}: the weights of {', '.join(changed)} changed since its jobs "
                          "were submitted; their rows would average two models. Use a new run.dir")
    return {**saved, **now}


INDEX = "sweep.json"  # {job name: {"job_id", "cluster"} or {"queued": true, "cluster": "local"}, RUNNER: {...}}
RUNNER = "local_runner"  # the detached process that starts a local sweep's queued jobs (no job name is this)


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


def job_state(sweep_dir: Path, name: str, record: dict | None) -> tuple[str, str]:
    """(pending | running | completed | failed | cancelled | timed out | not submitted, last error line)."""
    if (sweep_dir / "jobs" / name / RESULT).exists():
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


def last_error(sweep_dir: Path, job_id: str) -> str:
    log = sweep_dir / "submitit" / f"{job_id}_0_log.err"
    # A Python traceback ends with its one unindented "Type: message" line; submitit logs around it.
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip() and not ln[0].isspace()
             and not ln.startswith(("submitit ", "INFO:", "WARNING:", "ERROR:", "Traceback"))] if log.exists() else []
    return lines[-1].strip() if lines else f"(nothing in {log.name})"


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
    for spec, _ in expand(cfg):
        state, error = job_state(sweep_dir, spec.name, index.get(spec.name))
        states[spec.name] = state
        job_id = index.get(spec.name, {}).get("job_id") or "-"
        print(f"  {job_id:>12}  {state:13s} {spec.name}" + (f"\n{'':16}{error}" if error else ""))
    counts = Counter(states.values())
    print(f"{counts['completed']}/{len(states)} completed" + "".join(
        f", {n} {state}" for state, n in sorted(counts.items()) if state != "completed"))
    return states
