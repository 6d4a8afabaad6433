"""Forward + backward throughput of the two model families, eager against ``torch.compile``.

    python bench/models.py [--batch 8] [--steps 6] [--no-compile]

Full-size models on 12 x 5000 inputs (10 s at 500 Hz): ECGFounder Net1D (150 classes),
MTECG-T as masked autoencoder (75 % masked) and as classifier. Samples per second of a
training step (forward, loss, backward, AdamW step) in fp32 on this machine's CPU;
``compile_vs_eager_*`` is the ratio of compiled to eager throughput measured in the
same run (compilation time excluded, reported separately). Forward FLOPs per sample are
counted by ``torch.utils.flop_counter`` (exact for these layers).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from common import emit
from ecgdist.config import ModelSection
from ecgdist.models import build_model

MODELS = {"net1d": ModelSection(name="net1d"), "mtecg_mae": ModelSection(name="mtecg_mae", mask_ratio=0.75),
          "mtecg_cls": ModelSection(name="mtecg_cls")}


def step_fn(name: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = model(x)[0] if name == "mtecg_mae" else F.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def samples_per_s(name: str, batch: int, steps: int, compiled: bool) -> tuple[float, float]:
    torch.manual_seed(0)
    model = build_model(MODELS[name], num_classes=150).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compiled else model
    step = step_fn(name, forward, optimizer)
    x, y = torch.randn(batch, 12, 5000), (torch.rand(batch, 150) < 0.1).float()
    start = time.perf_counter()
    step(x, y)  # warm-up (and compilation)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    return batch * steps / (time.perf_counter() - start), warmup


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
    args = parser.parse_args()
    figures: dict = {"batch": args.batch, "threads": torch.get_num_threads()}
    for name in MODELS:
        figures[f"{name}_forward_gflops_per_sample"] = round(forward_flops(name) / 1e9, 3)
        eager, _ = samples_per_s(name, args.batch, args.steps, compiled=False)
        figures[f"{name}_eager_samples_per_s"] = round(eager, 2)
        line = (f"{name:10s} {figures[f'{name}_forward_gflops_per_sample']:.2f} GFLOP/sample forward; "
                f"eager {eager:7.2f} samples/s")
        if not args.no_compile:
            compiled, compile_s = samples_per_s(name, args.batch, args.steps, compiled=True)
            figures[f"{name}_compiled_samples_per_s"] = round(compiled, 2)
            figures[f"{name}_compile_s"] = round(compile_s, 1)
            figures[f"compile_vs_eager_{name}"] = round(compiled / eager, 3)
            line += f", compiled {compiled:7.2f} samples/s ({compiled / eager:.2f}x; compiling took {compile_s:.0f} s)"
        print(line, flush=True)
    emit(figures)


if __name__ == "__main__":
    main()
