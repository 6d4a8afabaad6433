"""What a downstream probe costs a pre-training run, and the interval that keeps it under 5 %.

    python bench/probe.py [--batch 8] [--rounds 3] [--gpu-train-rate net1d=1967 mtecg=2883]

A probe (ecgdist/pretrain/probe.py) is a forward pass of the frozen model over the probe's
records and one logistic-regression fit per task. Measured here, in the same run:

1. ``*_features_vs_train``: pooled features per second (``models.pooled_features``, eval mode,
   no gradients) over training samples per second (forward, loss, backward, AdamW) of the
   shipped full-size model (configs/pretrain/ecgfounder.yaml, mtecg_t.yaml) at ``--batch``,
   timed in turn on this machine's CPU;
2. ``fit_s_*``: the read-out fits at PTB-XL's size (17,418 records of folds 1-8, scored on
   the 2,183 of fold 9; superdiagnostic 5 classes, rhythm 12) on planted features of each
   model's width (Net1D 1024, MTECG-T 192);
3. ``*_gpu_*``: the projection to one GPU, from the GPU's measured training rate through the
   loop (``--gpu-train-rate``: docs/benchmarks.md, H200, micro batch 256) times the ratio of
   1: the probe's seconds, its share of an interval of ``probe.every_steps`` (5000) steps, and
   the interval at which it costs 5 %. bench/gpu.sh measures the GPU feature rate itself
   (``probe_features_per_s``); this is the estimate for a machine without one.

The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from common import REPO, best_rates_interleaved, emit

from ecgdist.config import PretrainConfig, load_config
from ecgdist.models import build_model, pooled_features
from ecgdist.tasks.linear_fit import fit_scores

CONFIGS = {"net1d": "configs/pretrain/ecgfounder.yaml", "mtecg": "configs/pretrain/mtecg_t.yaml"}
PTBXL_TRAIN, PTBXL_SCORE = 17_418, 2_183  # records of folds 1-8 and of fold 9 (the test fold 10 is never read)
TASK_CLASSES = {"superdiagnostic": 5, "rhythm": 12}


def rates(config: str, batch: int, rounds: int) -> tuple[dict[str, float], int]:
    """({"train", "features"} samples/s, feature width) of the shipped model on the CPU."""
    cfg = load_config(PretrainConfig, REPO / config)
    torch.manual_seed(0)
    model = build_model(cfg.model, len(cfg.data.leads), cfg.data.crop_samples, 150)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, len(cfg.data.leads), cfg.data.crop_samples)
    y = (torch.rand(batch, 150) < 0.1).float()

    def train_step() -> int:
        model.train()
        out = model(x)
        loss = out[0] if cfg.model.name == "mtecg_mae" else F.binary_cross_entropy_with_logits(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return batch

    def features() -> int:
        model.eval()
        with torch.no_grad():
            pooled_features(model, x)
        return batch

    train_step(), features()  # warm-up
    with torch.no_grad():
        model.eval()
        width = pooled_features(model, x[:1]).shape[1]
    return best_rates_interleaved({"train": train_step, "features": features}, rounds), width


def fit_seconds(width: int, classes: int, seed: int = 0) -> float:
    """Seconds of one task's read-out at PTB-XL's size: features with a planted linear signal."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((PTBXL_TRAIN + PTBXL_SCORE, width)).astype(np.float32)
    logits = x[:, :classes] * 2.0 - 1.5  # each class rests on one feature, about 20 % positive
    y = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    started = time.perf_counter()
    fit_scores(x[:PTBXL_TRAIN], y[:PTBXL_TRAIN], [x[PTBXL_TRAIN:]], 1.0)
    return time.perf_counter() - started


def interval_cost(features_per_s: float, fit_s: float, train_samples_per_s: float, batch: int,
                  every_steps: int) -> dict[str, float]:
    """A PTB-XL probe's seconds (features of folds 1-9 and the fits), its share of the wall time of
    an interval of ``every_steps`` steps of ``batch`` samples, and the interval at which it is 5 %."""
    features_s = (PTBXL_TRAIN + PTBXL_SCORE) / features_per_s
    probe_s, step_s = features_s + fit_s, batch / train_samples_per_s
    return {"features_s": features_s, "probe_s": probe_s,
            f"share_every_{every_steps}": probe_s / (every_steps * step_s + probe_s),
            "every_steps_for_5pct": probe_s * 0.95 / (0.05 * step_s)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gpu-train-rate", nargs="*", default=["net1d=1967", "mtecg=2883"],
                        help="MODEL=samples/s of one GPU through the loop (docs/benchmarks.md)")
    parser.add_argument("--gpu-batch", type=int, default=256, help="the shipped micro batch: samples per GPU step")
    parser.add_argument("--every-steps", type=int, default=5000)
    parser.add_argument("--models", nargs="*", default=sorted(CONFIGS), choices=sorted(CONFIGS))
    args = parser.parse_args()
    gpu_rate = {k: float(v) for k, v in (item.split("=") for item in args.gpu_train_rate)}
    figures: dict = {"device": "cpu", "threads": torch.get_num_threads(), "batch": args.batch,
                     "probe_records": PTBXL_TRAIN + PTBXL_SCORE}
    for m in args.models:
        measured, width = rates(CONFIGS[m], args.batch, args.rounds)
        ratio = measured["features"] / measured["train"]
        fits = {task: fit_seconds(width, classes) for task, classes in TASK_CLASSES.items()}
        figures.update({f"{m}_train_samples_per_s": measured["train"], f"{m}_features_per_s": measured["features"],
                        f"{m}_features_vs_train": ratio, f"{m}_feature_width": width,
                        **{f"fit_s_{task}_d{width}": s for task, s in fits.items()}})
        print(f"{m}: features {measured['features']:.1f}/s, train {measured['train']:.1f} samples/s on the CPU "
              f"({ratio:.2f}x); fits at PTB-XL size {', '.join(f'{t} {s:.2f} s' for t, s in fits.items())}", flush=True)
        if m in gpu_rate:
            cost = interval_cost(ratio * gpu_rate[m], sum(fits.values()), gpu_rate[m], args.gpu_batch, args.every_steps)
            figures.update({f"{m}_gpu_{k}": v for k, v in cost.items()})
            print(f"   one GPU at {gpu_rate[m]:.0f} samples/s: a probe {cost['probe_s']:.1f} s (features "
                  f"{cost['features_s']:.1f} s), {cost[f'share_every_{args.every_steps}']:.2%} of an interval of "
                  f"{args.every_steps} steps; 5 % at every {cost['every_steps_for_5pct']:.0f} steps", flush=True)
    emit({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()})


if __name__ == "__main__":
    main()
