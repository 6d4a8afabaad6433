"""``python -m ecgdist.export JOB_DIR OUT``: a finished fine-tune job's model, with its results-table row.

The weights are the ones the job selected on fold 9 and tested once on fold 10 (its
``model.pth``, which ``python -m ecgdist.predict`` reads); the export adds what a reader of
the file or its model card needs to judge them: the job's row of the results table (the
same columns and bootstrap as the sweep's results.md), its sweep's row over all the seeds
that finished when there are several, and the job's result (benchmark, task, strategy,
label fraction, seed, selected epoch, record counts, what its pre-training data was checked
against).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ecgdist.config import FinetuneConfig
from ecgdist.data.leakage import manifest_sha256
from ecgdist.finetune.job import MODEL, RESULT
from ecgdist.finetune.predict import Classifier
from ecgdist.finetune.results import (
    fmt,
    markdown_table,
    per_class,
    read_result,
    read_results,
    summarise,
    tested_elsewhere,
)
from ecgdist.models.pretrained import read_weights, write_weights

# What of a job's result.json an export carries (its metrics, per-class AUROC and paths stay in the job folder).
RESULT_KEYS = ("job", "backbone", "benchmark", "task", "strategy", "fraction", "seed", "selected_epoch",
               "epochs_trained", "linear_fit", "val_macro_auroc", "macro_auroc", "macro_auprc", "macro_auroc_ci",
               "macro_auprc_ci", "records", "pretraining_data", "simulated", "external")


def is_job(folder: str | Path) -> bool:
    """A finished fine-tune job's folder (its result.json is written last)."""
    return (Path(folder) / RESULT).exists()


def results_rows(job_dir: Path, result: dict) -> str:
    """The job's rows of the results table (fold 10's and any external test set's) and, when its sweep
    has finished more seeds of the same (backbone, benchmark, task, strategy, fraction), that group's
    rows: markdown, as results.md."""
    resamples = result["recipe"]["finetune"]["bootstrap"]
    own = [result, *tested_elsewhere(result)]
    table = "This model (seed {}):\n\n{}".format(result["seed"], markdown_table(summarise(own, resamples)))
    group = ("backbone", "task", "strategy", "fraction")
    tested = {r["benchmark"] for r in own}
    sweep_dir = job_dir.parent.parent
    seeds = [r for r in read_results(sweep_dir) if r["benchmark"] in tested and all(r.get(k) == result.get(k)
                                                                                  for k in group)] \
        if job_dir.parent.name == "jobs" else []
    count = len({r["seed"] for r in seeds})
    if count > 1:
        table += f"\nIts sweep's row ({count} seeds):\n\n" + markdown_table(summarise(seeds, resamples))
    return table + "\nThis model by class:\n\n" + per_class_table(per_class([result]))


def per_class_table(rows: list[dict]) -> str:
    """One seed's per_class.csv rows as markdown: a class's figure beside its test positives."""
    lines = ["| class | test positives | AUROC | AUPRC |", "|---|---|---|---|"]
    lines += [f"| {r['class']} | {r['test_positives']} | {fmt(r['auroc_mean'])} | {fmt(r['auprc_mean'])} |" for r in rows]
    return "\n".join(lines) + "\n"


def export(job_dir: str | Path, out: str | Path, best: bool = False, step: int | None = None) -> str:
    """Write the job's model to ``out`` (safetensors for ``.safetensors``); the line the command prints."""
    job_dir = Path(job_dir)
    if best or step is not None:
        raise ValueError(f"{job_dir} is a fine-tune job: it holds one model, the one fold 9 selected "
                         "(--best and --step choose among a pre-training run's checkpoints)")
    result = read_result(job_dir)
    state, extra = read_weights(job_dir / MODEL)
    corpus = result["recipe"]["corpus"]
    extra = {**extra, "result": {k: result.get(k) for k in RESULT_KEYS}, "results_table": results_rows(job_dir, result),
             "corpus": {"path": corpus, "manifest_sha256": manifest_sha256(corpus)}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_weights(out, state, extra)
    return (f"exported fine-tune job {result['job']} (test macro AUROC {result['macro_auroc']:.4f}, "
            f"AUPRC {result['macro_auprc']:.4f}; {len(state)} tensors, {len(extra['classes'])} classes) to {out}")


def exported_model(weights: str | Path) -> tuple[torch.nn.Module, FinetuneConfig, dict]:
    """The classifier an export holds (as ``python -m ecgdist.predict`` builds it), its config, its other entries."""
    classifier = Classifier(weights)
    return classifier.model, classifier.cfg, classifier.extra
