"""A sweep's jobs: the ones its config expands to (backbones x benchmarks x tasks x strategies x
label fractions x seeds), and the submitit executor that runs them.

Below the sweep's checks, its header and its local runner, which all walk the same jobs.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from ecgdist.config import FinetuneConfig
from ecgdist.finetune.job import JobSpec
from ecgdist.tasks.benchmark import TASKS


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
    external_keys: dict[str, str] = dataclasses.field(default_factory=dict)  # test set: the key naming its corpus


def benchmark_runs(cfg: FinetuneConfig) -> list[BenchmarkRun]:
    """Every backbone on PTB-XL's ``sweep.tasks`` (its own corpus), then on each of ``sweep.benchmarks``
    (the benchmark's corpus, or the one the backbone names for it in ``corpora``; its external test sets
    likewise, ``corpora`` naming them ``benchmark/test set``)."""
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
            tests = {test: (path, bench.external_key(test)) for test, path in bench.external.items()}
            for test in bench.external:
                if name and f"{bench.name}/{test}" in own[name].corpora:
                    tests[test] = (own[name].corpora[f"{bench.name}/{test}"],
                                   f"sweep.backbones ({name}) corpora ({bench.name}/{test})")
            own_tests = dataclasses.replace(bench, external={test: path for test, (path, _) in tests.items()})
            run_cfg = dataclasses.replace(
                job_cfg, data=dataclasses.replace(job_cfg.data, corpus=corpus),
                sweep=dataclasses.replace(job_cfg.sweep, benchmarks=[own_tests if b.name == bench.name else b
                                                                     for b in job_cfg.sweep.benchmarks]))
            runs.append(BenchmarkRun(name, bench.name, list(bench.tasks or TASKS[bench.kind]), run_cfg, key,
                                     {test: test_key for test, (_, test_key) in tests.items()}))
    return runs


def expand(cfg: FinetuneConfig) -> list[tuple[JobSpec, FinetuneConfig]]:
    s = cfg.sweep
    return [(JobSpec(task, strategy, fraction, seed, run.backbone, run.benchmark), run.cfg)
            for run in benchmark_runs(cfg)
            for task, strategy, fraction, seed in itertools.product(run.tasks, s.strategies, s.fractions, s.seeds)]


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
