"""Forward + backward throughput of the two model families, eager against ``torch.compile``.

    python bench/models.py [--batch 8] [--steps 6] [--no-compile]

Full-size models on 12 x 5000 inputs (10 s at 500 Hz): ECGFounder Net1D (150 classes),
MTECG-T as masked autoencoder (75 % masked) and as classifier. Samples per second of a
training step (forward, loss, backward, AdamW step): in fp32 on a CPU, under bf16
autocast on a GPU (how pre-training runs there), where ``mfu_*`` is the model FLOPs
utilisation against the card's dense bf16 peak (``--peak-tflops``; H100/H200 known).
``compile_vs_eager_*`` is the ratio of compiled to eager throughput measured in the
same run (compilation time excluded, reported separately). Forward FLOPs per sample are
counted by ``torch.utils.flop_counter`` (exact for these layers); a training step is
taken as three forwards.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F
from common import emit

from ecgdist.config import ModelSection
from ecgdist.models import build_model

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DENSE_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4}  # SXM, without sparsity
MODELS = {"net1d": ModelSection(name="net1d"), "mtecg_mae": ModelSection(name="mtecg_mae", mask_ratio=0.75),
          "mtecg_cls": ModelSection(name="mtecg_cls")}


def step_fn(name: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, autocast: bool):
    precision = torch.autocast("cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with precision:
            loss = model(x)[0] if name == "mtecg_mae" else F.binary_cross_entropy_with_logits(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def samples_per_s(name: str, batch: int, steps: int, compiled: bool,
                  precision: str = "autocast") -> tuple[float, float]:
    """(samples/s, seconds of the first step) of a training step; ``precision``: "autocast" (bf16
    autocast on a GPU, fp32 on a CPU), "bf16" (weights and inputs in bf16, as DeepSpeed's bf16 mode
    runs the forward and backward) or "fp32"."""
    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = build_model(MODELS[name], num_classes=150).train().to(DEVICE, dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compiled else model
    step = step_fn(name, forward, optimizer, autocast=precision == "autocast" and DEVICE.type == "cuda")
    x = torch.randn(batch, 12, 5000, device=DEVICE, dtype=dtype)
    y = (torch.rand(batch, 150, device=DEVICE) < 0.1).float()

    def timed(repeats: int) -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            step(x, y)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    warmup = timed(1)  # (and compilation)
    return batch * steps / timed(steps), warmup


def forward_flops(name: str) -> int:
    """FLOPs of one sample's forward pass, counted by torch (a training step is about 3x)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(MODELS[name], num_classes=150).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 12, 5000))
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak, for MFU")
    args = parser.parse_args()
    card = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu"
    peak = args.peak_tflops or next((v for k, v in DENSE_BF16_TFLOPS.items() if k in card), None)
    figures: dict = {"device": card, "batch": args.batch, "threads": torch.get_num_threads()}
    for name in MODELS:
        flops = forward_flops(name)
        figures[f"{name}_forward_gflops_per_sample"] = round(flops / 1e9, 3)
        runs = {"eager": samples_per_s(name, args.batch, args.steps, compiled=False)}
        if not args.no_compile:
            runs["compiled"] = samples_per_s(name, args.batch, args.steps, compiled=True)
        line = f"{name:10s} {flops / 1e9:.2f} GFLOP/sample forward"
        for mode, (rate, warmup_s) in runs.items():
            figures[f"{name}_{mode}_samples_per_s"] = round(rate, 2)
            line += f"; {mode} {rate:8.2f} samples/s"
            if peak:
                figures[f"mfu_{name}_{mode}"] = round(3 * flops * rate / (peak * 1e12), 4)
                line += f" (MFU {figures[f'mfu_{name}_{mode}']:.1%})"
            if mode == "compiled":
                figures[f"{name}_compile_s"] = round(warmup_s, 1)
                figures[f"compile_vs_eager_{name}"] = round(rate / runs["eager"][0], 3)
                line += f", {figures[f'compile_vs_eager_{name}']:.2f}x eager, compiling took {warmup_s:.0f} s"
        print(line, flush=True)
    emit(figures)


if __name__ == "__main__":
    main()
