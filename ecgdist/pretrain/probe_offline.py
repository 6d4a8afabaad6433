"""``python -m ecgdist.probe RUN_DIR [--step N]``: a run's probe recomputed from one of its checkpoints.

The check that a probe logged during pre-training measured what it says: one process loads
the checkpoint's consolidated weights (as ``ecgdist.export`` writes them, from any ZeRO
stage), runs the run's own probe recipe (its config.yaml) over the same records in fp32,
and prints one JSON line with the recomputed values, the values ``probe.jsonl`` logged at
that step and their largest difference. On CPU the two agree to float rounding; a bf16 GPU
run's logged values differ by its precision.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import torch

from ecgdist.config import ConfigError, PretrainConfig, load_config
from ecgdist.models import build_model
from ecgdist.pretrain.export import checkpoint_weights, choose_checkpoint
from ecgdist.pretrain.probe import HISTORY_FILE, features_on_ranks, open_probe_sets, read_history, score_tasks


class Offline:
    """The one-process stand-in for a DeepSpeed engine that ``features_on_ranks`` reads."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module, self.device = module, torch.device("cpu")

    def eval(self) -> None:
        self.module.eval()

    def train(self) -> None:
        self.module.train()

    def bfloat16_enabled(self) -> bool:
        return False

    def fp16_enabled(self) -> bool:
        return False


def reprobe(run_dir: str | Path, step: int | None = None, workers: int = 0) -> dict:
    run_dir = Path(run_dir)
    cfg = load_config(PretrainConfig, run_dir / "config.yaml")
    if not cfg.probe.active:
        raise ConfigError(f"{run_dir}'s config runs no probe (probe.benchmarks, probe.every_steps): "
                          "nothing to recompute")
    tag, _ = choose_checkpoint(run_dir, step=step)
    state, client = checkpoint_weights(run_dir / "checkpoints", tag)
    model = build_model(cfg.model, len(cfg.data.leads), cfg.data.crop_samples, len(client["labels"]))
    model.load_state_dict(state)
    engine = Offline(model)
    values = {}
    for probe_set in open_probe_sets(cfg):
        features = features_on_ranks(engine, probe_set.dataset, cfg.probe.batch_size, 0, 1, workers)
        values.update(score_tasks(probe_set, features, cfg.probe.c))
    logged = next((e["values"] for e in read_history(run_dir / HISTORY_FILE) if e["step"] == client["step"]), {})
    differences = [abs(values[k] - logged[k]) for k in values if k in logged and math.isfinite(values[k])]
    return {"step": int(client["step"]), "values": values, "logged": logged,
            "max_difference": max(differences) if differences else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdist.probe", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--step", type=int, help="the checkpoint of this step (default: the newest)")
    parser.add_argument("--workers", type=int, default=0, help="loader processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        result = reprobe(args.run_dir, args.step, args.workers)
    except (FileNotFoundError, ValueError) as error:  # ConfigError too
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
