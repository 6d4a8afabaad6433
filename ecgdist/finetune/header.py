"""The results table's header: how its numbers were made (folds, seeds, intervals, epochs, inputs,
recipes), and a banner when any corpus is simulated.
"""

from __future__ import annotations

from pathlib import Path

from ecgdist.config import FinetuneConfig
from ecgdist.data.index import split_record
from ecgdist.data.shards import read_manifest
from ecgdist.finetune.job import benchmark_of, stages
from ecgdist.finetune.plan import backbones, benchmark_runs
from ecgdist.tasks.linear_fit import C_GRID

SIMULATED_BANNER = "**SIMULATED ECGs: a built-in synthetic corpus, not PTB-XL. These numbers say nothing about real ECGs.**"


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
            + "".join(f". {line}" for line in external_tests(cfg))
            + ". Inputs: " + "; ".join(inputs(cfg))
            + ". Recipes: " + "; ".join(recipes(cfg)) + ".")


def external_tests(cfg: FinetuneConfig) -> list[str]:
    """The external test sets, once each (a backbone's own corpus of one named beside it), as a sentence."""
    described = {}
    for run in benchmark_runs(cfg):
        tests = benchmark_of(run.cfg, run.benchmark).external
        for test, path in tests.items():
            label = f"{run.benchmark}→{test}"
            described.setdefault(label, []).append(f"{path}" + f" ({run.backbone})" * bool(run.backbone))
    if not described:
        return []
    return ["External test sets (every record, scored with the weights fold 9 selected; none holds a record of "
            "folds 1-9 of its benchmark's corpus): " + "; ".join(f"{label}: {', '.join(dict.fromkeys(paths))}"
                                                               for label, paths in described.items())]


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
