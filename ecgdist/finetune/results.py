"""The sweep's results table: one row per (task, strategy, label fraction), mean and sd over seeds.

Written as results.csv and results.md in the sweep folder, with PNG plots of each
metric against the label fraction per task. The relative gain compares post-training
with the baseline of the same task and fraction: 100 * (post - base) / base.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ecgdist.files import atomic_write_text
from ecgdist.finetune.job import RESULT

METRICS = ("macro_auroc", "macro_auprc")
COLUMNS = ["task", "strategy", "fraction", "n_jobs", "macro_auroc_mean", "macro_auroc_sd", "macro_auprc_mean",
           "macro_auprc_sd", "auroc_gain_pct", "auprc_gain_pct"]


def read_results(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((sweep_dir / "jobs").glob(f"*/{RESULT}"))]


def summarise(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["task"], r["strategy"], r["fraction"])].append(r)
    rows = []
    for (task, strategy, fraction), jobs in sorted(groups.items()):
        row = {"task": task, "strategy": strategy, "fraction": fraction, "n_jobs": len(jobs)}
        for metric in METRICS:
            values = np.array([j[metric] for j in jobs], dtype=float)
            row[f"{metric}_mean"] = float(np.nanmean(values))
            row[f"{metric}_sd"] = float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    base = {(r["task"], r["fraction"]): r for r in rows if r["strategy"] == "baseline"}
    for row in rows:
        ref = base.get((row["task"], row["fraction"]))
        for metric, column in zip(METRICS, ("auroc_gain_pct", "auprc_gain_pct")):
            row[column] = (100 * (row[f"{metric}_mean"] - ref[f"{metric}_mean"]) / ref[f"{metric}_mean"]
                           if ref is not None and row["strategy"] == "post_training" else None)
    return rows


def markdown_table(rows: list[dict]) -> str:
    def fmt(value, digits=3):
        return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| task | strategy | fraction | macro AUROC | macro AUPRC | AUROC gain % | AUPRC gain % | jobs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['strategy']} | {r['fraction']:g} | {fmt(r['macro_auroc_mean'])} ± "
                     f"{fmt(r['macro_auroc_sd'])} | {fmt(r['macro_auprc_mean'])} ± {fmt(r['macro_auprc_sd'])} | "
                     f"{fmt(r['auroc_gain_pct'], 1)} | {fmt(r['auprc_gain_pct'], 1)} | {r['n_jobs']} |")
    return "\n".join(lines) + "\n"


def write_results(sweep_dir: Path, banner: str = "") -> list[dict]:
    from ecgdist.finetune.plots import metric_vs_fraction_figure

    rows = summarise(read_results(sweep_dir))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(sweep_dir / "results.csv", text.getvalue())
    atomic_write_text(sweep_dir / "results.md", (banner + "\n\n" if banner else "") + markdown_table(rows))
    for task in sorted({r["task"] for r in rows}):
        for metric in METRICS:
            figure = metric_vs_fraction_figure(rows, task, metric)
            figure.savefig(sweep_dir / f"{task}_{metric}_vs_fraction.png", dpi=100)
    return rows
