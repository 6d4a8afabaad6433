"""The sweep's results table: one row per (backbone, benchmark, task, strategy, label fraction), and the
paired gains.

Each row holds the mean and sd over seeds of macro AUROC / AUPRC on fold 10 and a
bootstrap interval of that seed mean (the same test-record resamples for every seed). The
second table is the paired difference post_training - baseline for each benchmark, task
and fraction: same test records, same seeds, same resamples, so a reader sees whether a gain
is more than test-set noise. The relative gain compares the means: 100 * (post - base) / base.
Notes under the table name rows still improving at their last epoch, and classes without a
training positive or absent from a task.
Written as results.csv and results.md in the sweep folder, with PNG plots of each metric
against the label fraction per task; per_class.csv gives each row's classes one by one.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ecgdist.files import atomic_write_text
from ecgdist.finetune.external import EXTERNAL
from ecgdist.finetune.job import RESULT
from ecgdist.tasks.metrics import (
    bootstrap,
    macro_auprc,
    macro_auroc,
    paired_difference,
    per_class_auprc,
    per_class_auroc,
    seed_mean,
)

METRICS = {"macro_auroc": macro_auroc, "macro_auprc": macro_auprc}
RECIPE_MISMATCH = "**inputs differ from the weights' recipe**"
COLUMNS = ["backbone", "benchmark", "task", "strategy", "fraction", "n_jobs", "macro_auroc_mean", "macro_auroc_sd",
           "macro_auroc_low", "macro_auroc_high", "macro_auprc_mean", "macro_auprc_sd", "macro_auprc_low",
           "macro_auprc_high", "auroc_gain_pct", "auprc_gain_pct", "pretraining_data", "selected_at_last_epoch"]
PER_CLASS_COLUMNS = ["backbone", "benchmark", "task", "strategy", "fraction", "class", "test_positives", "n_jobs",
                     "auroc_mean", "auroc_sd", "auprc_mean", "auprc_sd"]
PAIRED_COLUMNS = ["backbone", "benchmark", "task", "fraction", "seeds", "macro_auroc_diff", "macro_auroc_diff_low",
                  "macro_auroc_diff_high", "macro_auprc_diff", "macro_auprc_diff_low", "macro_auprc_diff_high"]


def read_result(job_dir: Path) -> dict:
    """A finished job's result.json, with the folder its test predictions are in (a job from before
    benchmarks ran a PTB-XL task)."""
    return {"benchmark": "ptbxl", **json.loads((job_dir / RESULT).read_text()), "dir": job_dir}


def read_results(sweep_dir: Path) -> list[dict]:
    """Each finished job's result (``read_result``) in the sweep, then its external test sets' (``tested_elsewhere``)."""
    results = [read_result(p.parent) for p in sorted((sweep_dir / "jobs").glob(f"*/{RESULT}"))]
    return results + [elsewhere for r in results for elsewhere in tested_elsewhere(r)]


# What a job's result says of its training, noted under the table once, at the benchmark's own rows.
TRAINING_NOTES = (EXTERNAL, "classes_without_training_positive", "classes_not_in_task", "epochs_trained")


def tested_elsewhere(result: dict) -> list[dict]:
    """A job's external test sets as results of their own, of benchmark ``benchmark→test set``, so that
    their rows, intervals, per-class figures and paired gains come out as fold 10's do."""
    job = {k: v for k, v in result.items() if k not in TRAINING_NOTES}
    return [{**job, **{k: v for k, v in tested.items() if k != "corpus"}, "benchmark": f"{result['benchmark']}→{name}",
             "records": {"test": tested["records"]}, "dir": result["dir"] / EXTERNAL / name}
            for name, tested in result.get(EXTERNAL, {}).items()]


def test_predictions(jobs: list[dict], what: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The test targets the jobs share and each job's scores; ``what`` names the jobs in the error
    raised when they were tested on different records (their figures cannot be averaged or paired)."""
    targets = [np.load(job["dir"] / "test_targets.npy") for job in jobs]
    if any(not np.array_equal(t, targets[0]) for t in targets):
        raise ValueError(f"{what}: the jobs were tested on different records")
    return targets[0], [np.load(job["dir"] / "test_scores.npy") for job in jobs]


def seed_mean_interval(targets: np.ndarray, scores: list[np.ndarray], metric, resamples: int) -> tuple[float, float]:
    """Interval of the metric's mean over the seeds' scores (the same test-record resamples for each)."""
    return bootstrap(targets, seed_mean(targets, scores, metric), resamples, seed=0)[1]


def row_name(backbone: str, benchmark: str, task: str, strategy: str, fraction: float) -> str:
    """A row of the table as its notes and errors name it ("" strategy: the paired row of a task)."""
    return " ".join(filter(None, (backbone, benchmark, task, strategy))) + f" at fraction {fraction:g}"


def table_rows(results: list[dict]) -> list[tuple[tuple, list[dict]]]:
    """The jobs of each table row, (backbone, benchmark, task, strategy, fraction), in table order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        groups[(r.get("backbone", ""), r["benchmark"], r["task"], r["strategy"], r["fraction"])].append(r)
    return sorted(groups.items())


def summarise(results: list[dict], resamples: int = 0) -> list[dict]:
    rows = []
    for key, jobs in table_rows(results):
        backbone, benchmark, task, strategy, fraction = key
        targets, scores = test_predictions(jobs, row_name(*key))
        statuses = sorted({j.get("pretraining_data", {}).get("status", "unknown") for j in jobs})
        row = {"backbone": backbone, "benchmark": benchmark, "task": task, "strategy": strategy, "fraction": fraction,
               "n_jobs": len(jobs),
               "pretraining_data": "OVERLAP" if "OVERLAP" in statuses else ", ".join(statuses)}
        if any(j.get("pretraining_data", {}).get("recipe_mismatch") for j in jobs):
            row["pretraining_data"] += f"; {RECIPE_MISMATCH}"
        seen = max((j.get("pretraining_data", {}).get("training_records_seen") or 0 for j in jobs), default=0)
        if seen:
            voided = " (**label fraction < 1: a supervised pre-training or fine-tune has seen their labels**)"
            row["pretraining_data"] += f"; saw {seen} training-fold records" + (voided if fraction < 1 else "")
        row["selected_at_last_epoch"] = sum(map(selected_at_last_epoch, jobs))
        for name, metric in METRICS.items():
            values = np.array([j[name] for j in jobs], dtype=float)
            row[f"{name}_mean"] = float(np.nanmean(values))
            row[f"{name}_sd"] = float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0
            row[f"{name}_low"], row[f"{name}_high"] = seed_mean_interval(targets, scores, metric, resamples)
        rows.append(row)
    base = {(r["backbone"], r["benchmark"], r["task"], r["fraction"]): r for r in rows if r["strategy"] == "baseline"}
    for row in rows:
        ref = base.get((row["backbone"], row["benchmark"], row["task"], row["fraction"]))
        for name, column in zip(METRICS, ("auroc_gain_pct", "auprc_gain_pct")):
            row[column] = (100 * (row[f"{name}_mean"] - ref[f"{name}_mean"]) / ref[f"{name}_mean"]
                           if ref is not None and row["strategy"] == "post_training" else None)
    return rows


def job_classes(job: dict, count: int) -> list[str]:
    """The class of each score column (classes.json; column numbers for a job that wrote none)."""
    path = job["dir"] / "classes.json"
    return json.loads(path.read_text()) if path.exists() else [str(k) for k in range(count)]


def per_class(results: list[dict]) -> list[dict]:
    """Each row's AUROC and AUPRC per class (mean and sd over seeds) beside the class's test positives,
    which say how far a class's figure can be trusted (a class with 2 positives moves in big steps)."""
    rows = []
    for key, jobs in table_rows(results):
        backbone, benchmark, task, strategy, fraction = key
        targets, scores = test_predictions(jobs, row_name(*key))
        values = {name: np.array([metric(targets, s) for s in scores])
                  for name, metric in (("auroc", per_class_auroc), ("auprc", per_class_auprc))}
        for k, name in enumerate(job_classes(jobs[0], targets.shape[1])):
            row = {"backbone": backbone, "benchmark": benchmark, "task": task, "strategy": strategy,
                   "fraction": fraction, "class": name, "test_positives": int((targets[:, k] > 0).sum()),
                   "n_jobs": len(jobs)}
            for metric, table in values.items():
                column = table[:, k]
                scored = np.isfinite(column).any()
                row[f"{metric}_mean"] = float(np.nanmean(column)) if scored else None
                row[f"{metric}_sd"] = float(np.nanstd(column, ddof=1)) if scored and len(column) > 1 else None
            rows.append(row)
    return rows


def paired_gains(results: list[dict], resamples: int) -> list[dict]:
    """post_training - baseline per (backbone, benchmark, task, fraction), over the seeds both strategies finished."""
    by_key = {(r.get("backbone", ""), r["benchmark"], r["task"], r["fraction"], r["strategy"], r["seed"]): r
              for r in results}
    rows = []
    for group in sorted({key[:4] for key in by_key}):
        seeds = sorted(key[5] for key in by_key if key[:5] == (*group, "post_training")
                       and (*group, "baseline", key[5]) in by_key)
        if not seeds:
            continue
        backbone, benchmark, task, fraction = group
        jobs = [by_key[(*group, strategy, s)] for strategy in ("post_training", "baseline") for s in seeds]
        targets, scores = test_predictions(jobs, row_name(backbone, benchmark, task, "", fraction))
        post, base = scores[:len(seeds)], scores[len(seeds):]
        row = {"backbone": backbone, "benchmark": benchmark, "task": task, "fraction": fraction, "seeds": len(seeds)}
        for name, metric in METRICS.items():
            diff, (low, high) = paired_difference(targets, post, base, metric, resamples, seed=0)
            row.update({f"{name}_diff": diff, f"{name}_diff_low": low, f"{name}_diff_high": high})
        rows.append(row)
    return rows


def fmt(value, digits=3) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| backbone | benchmark | task | strategy | fraction | macro AUROC mean ± sd [90 % CI] "
             "| macro AUPRC mean ± sd [90 % CI] | AUROC gain % | AUPRC gain % | jobs | pre-training data vs evaluation records |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{fmt(r[f'{m}_mean'])} ± {fmt(r[f'{m}_sd'])} [{fmt(r[f'{m}_low'])}, {fmt(r[f'{m}_high'])}]"
                 for m in METRICS]
        lines.append(f"| {r['backbone']} | {r['benchmark']} | {r['task']} | {r['strategy']} | {r['fraction']:g} | "
                     f"{cells[0]} | {cells[1]} | "
                     f"{fmt(r['auroc_gain_pct'], 1)} | {fmt(r['auprc_gain_pct'], 1)} | {r['n_jobs']} | "
                     + overlap_cell(r["pretraining_data"]) + " |")
    return "\n".join(lines) + "\n"


def overlap_cell(text: str) -> str:
    """The pre-training-data cell, an overlap with the evaluation folds in bold whatever follows it."""
    return "**OVERLAP: trained on evaluation records**" + text.removeprefix("OVERLAP") if text.startswith("OVERLAP") \
        else text


def paired_table(rows: list[dict]) -> str:
    lines = ["| backbone | benchmark | task | fraction | seeds | Δ macro AUROC [90 % CI] | Δ macro AUPRC [90 % CI] |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[f'{m}_diff']:+.4f} [{r[f'{m}_diff_low']:+.4f}, {r[f'{m}_diff_high']:+.4f}]" for m in METRICS]
        lines.append(f"| {r['backbone']} | {r['benchmark']} | {r['task']} | {r['fraction']:g} | {r['seeds']} | "
                     f"{cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def missing_classes_note(results: list[dict]) -> str:
    """Which classes a row's training records hold no positive of (its AUROC then scores them unlearnt)."""
    missing = defaultdict(set)
    for r in results:
        if r.get("classes_without_training_positive"):
            missing[(r.get("backbone", ""), r["benchmark"], r["task"], r["fraction"])].update(
                r["classes_without_training_positive"])
    return "".join(f"\nNo training positive in {benchmark} {task} at fraction {fraction:g}"
                   + f" ({backbone})" * bool(backbone) + f": {', '.join(sorted(classes))}\n"
                   for (backbone, benchmark, task, fraction), classes in sorted(missing.items()))


def selected_at_last_epoch(job: dict) -> bool:
    """Whether validation chose the last of two or more epochs: its AUROC was still rising when training
    stopped, so the row may understate what more epochs would give (a linear probe's few epochs, say)."""
    trained = job.get("epochs_trained") or 0  # results from before the count was kept: unknown, not flagged
    return trained >= 2 and job.get("selected_epoch") == trained


def still_rising_note(rows: list[dict]) -> str:
    """The rows whose validation AUROC peaked at the last epoch, in how many of their seeds."""
    rising = [row_name(r["backbone"], r["benchmark"], r["task"], r["strategy"], r["fraction"])
              + f" ({r['selected_at_last_epoch']} of {r['n_jobs']} seeds)" for r in rows if r["selected_at_last_epoch"]]
    return "\nSelected at the last epoch trained (validation AUROC still rising when training stopped; more epochs " \
        f"may raise the row): {'; '.join(rising)}\n" if rising else ""


def not_in_task_note(results: list[dict]) -> str:
    """Listed classes that no record of a task holds (left out of it, not scored as unlearnt)."""
    absent = {(r["benchmark"], r["task"]): r["classes_not_in_task"] for r in results if r.get("classes_not_in_task")}
    return "".join(f"\nNot in {benchmark} {task} (no record holds them; left out): {', '.join(classes)}\n"
                   for (benchmark, task), classes in sorted(absent.items()))


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def write_results(sweep_dir: Path, header: str = "", resamples: int = 0, simulated: bool = False) -> list[dict]:
    import matplotlib.pyplot as plt

    from ecgdist.finetune.plots import metric_vs_fraction_figure

    results = read_results(sweep_dir)
    rows, paired = summarise(results, resamples), paired_gains(results, resamples)
    write_csv(sweep_dir / "results.csv", COLUMNS, rows)
    write_csv(sweep_dir / "paired.csv", PAIRED_COLUMNS, paired)
    write_csv(sweep_dir / "per_class.csv", PER_CLASS_COLUMNS, per_class(results))
    tested = {(r["benchmark"], r["task"]): r["records"]["test"] for r in results if "records" in r}
    header += "\nTest records: " + ", ".join(f"{benchmark} {task} {n}" for (benchmark, task), n in sorted(tested.items())) \
        + "." * bool(tested)
    text = header.strip() + "\n\n" + markdown_table(rows) + still_rising_note(rows) + missing_classes_note(results) \
        + not_in_task_note(results)
    if paired:
        text += ("\n**Paired gain, post_training − baseline** (same test records and seeds; a gain whose "
                 "interval excludes 0 is more than test-set noise):\n\n" + paired_table(paired))
    atomic_write_text(sweep_dir / "results.md", text)
    several_benchmarks = len({r["benchmark"] for r in rows}) > 1
    for backbone, benchmark, task in sorted({(r["backbone"], r["benchmark"], r["task"]) for r in rows}):
        prefix = f"{backbone}_" * (len({r["backbone"] for r in rows}) > 1) \
            + f"{benchmark.replace('→', '_on_')}_" * several_benchmarks
        for name in METRICS:
            title = ("SIMULATED ECGs (not PTB-XL): " if simulated else f"{benchmark} ") + task \
                + f", {backbone}" * bool(backbone)
            figure = metric_vs_fraction_figure([r for r in rows if (r["backbone"], r["benchmark"]) == (backbone, benchmark)],
                                               task, name, title)
            figure.savefig(sweep_dir / f"{prefix}{task}_{name}_vs_fraction.png", dpi=100)
            plt.close(figure)  # pyplot keeps every figure alive until closed
    return rows
