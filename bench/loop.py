"""The pre-training loop against the bare model, like for like, in one process on one device.

    python bench/loop.py net1d|mtecg [--steps 30] [--warmup 5] [--out DIR] [--sizes 64 256 512]

The shipped config (configs/pretrain/ecgfounder.yaml or mtecg_t.yaml: full-size model,
shipped micro batch, its ZeRO config) on replicated real records, one rank:

1. ``loop_*``: samples/s of ``TrainLoop`` through the DeepSpeed engine, three ways: eager with
   the old host-sync path (``train.loss_sync: micro_step``, every loss read on the host and
   an agreement every step), eager with the new one (losses read at log steps), and compiled
   (``engine.compile``, the pinned mode) with the new one;
2. ``bare_*``: a plain PyTorch training step of the same architecture (forward, loss,
   backward, AdamW) with its weights in the engine's precision (bf16 on a GPU), at each
   ``--sizes`` batch and at the shipped micro batch; ``loop_vs_bare`` = the eager new loop
   over the bare step at the shipped batch (like for like), ``mfu_*`` from counted FLOPs
   (bench/models.py) against the card's dense bf16 peak;
3. ``probe_features_per_s``: frozen pooled features (``forward_features`` and the model's own
   pooling, eval mode, compute precision) at the shipped batch: what pre-training probes cost;
4. a torch.profiler table of the top operators of compiled loop steps: ``DIR/profile_MODEL.txt``.

The figures so far are printed as one JSON line after each part; the last line holds them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import NOT_PTBXL, REPO, emit, replicated_corpus, timed_loop_steps
from models import DENSE_BF16_TFLOPS, forward_flops, samples_per_s

from ecgdist.pretrain.deepspeed_adapter import compile_engine

GPU = torch.cuda.is_available()
CONFIGS = {"net1d": ("configs/pretrain/ecgfounder.yaml", "net1d"),
           "mtecg": ("configs/pretrain/mtecg_t.yaml", "mtecg_mae")}  # -> (shipped config, bench/models.py name)


def synchronize() -> None:
    if GPU:
        torch.cuda.synchronize()


def prepared(config: str, corpus: Path, run_dir: Path, overrides: list[str]):
    from ecgdist.config import PretrainConfig, load_config
    from ecgdist.dist import init_distributed
    from ecgdist.pretrain.main import prepare

    cfg = load_config(PretrainConfig, REPO / config, [
        f"data.corpus={corpus}", f"run.dir={run_dir}", "data.min_label_count=1", "train.val_batches=0",
        "train.log_every_steps=100000", "train.val_every_steps=100000", "checkpoint.save_every_steps=0",
        "checkpoint.save_every_minutes=0", *NOT_PTBXL, *overrides])
    return cfg, prepare(cfg, init_distributed(single_group=True))


def loop_rate(cfg, p, warmup: int, steps: int, **train) -> float:
    """Samples/s of ``steps`` loop steps after ``warmup`` (compilation, if any, happens there)."""
    from ecgdist.pretrain.objectives import objective_for

    seconds = timed_loop_steps(p.engine, p.data, objective_for(cfg.model.name), dataclasses.replace(cfg.train, **train),
                               p.layout, cfg.run.dir, warmup, steps, synchronize)
    return steps * p.layout.global_batch / seconds


def probe_rate(p, batch: int, repeats: int) -> float:
    """Pooled frozen features per second (``models.pooled_features``), as a probe computes them."""
    from ecgdist.models import pooled_features

    dtype = torch.bfloat16 if p.engine.bfloat16_enabled() else torch.float32
    x = torch.randn(batch, 12, 5000, device=p.engine.device, dtype=dtype)
    p.engine.module.eval()
    with torch.no_grad():
        pooled_features(p.engine.module, x)  # warm-up
        synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            pooled_features(p.engine.module, x)
        synchronize()
    p.engine.module.train()
    return batch * repeats / (time.perf_counter() - start)


def profile(cfg, p, out: Path, name: str) -> None:
    """The top operators of two (compiled) loop steps, by their own device time on a GPU, else CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if GPU else [])
    with profiler(activities=activities) as prof:
        loop_rate(cfg, p, 1, 2)
    sort = "self_cuda_time_total" if GPU else "self_cpu_time_total"
    (out / f"profile_{name}.txt").write_text(prof.key_averages().table(sort_by=sort, row_limit=20))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=sorted(CONFIGS))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 256, 512], help="bare-step batches")
    parser.add_argument("--micro-batch", type=int, default=None, help="instead of the shipped one (CPU smoke)")
    parser.add_argument("--records", type=int, default=4096)
    parser.add_argument("--corpus", type=Path, help="a replicated corpus to read (bench/gpu.py's) instead of building one")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-loop"))
    args = parser.parse_args()
    config, bare_name = CONFIGS[args.model]
    work = Path(tempfile.mkdtemp(prefix="ecgdist-bench-loop-"))
    args.out.mkdir(parents=True, exist_ok=True)
    card = torch.cuda.get_device_name() if GPU else "cpu"
    peak = next((v for k, v in DENSE_BF16_TFLOPS.items() if k in card), None)
    m = args.model
    try:
        corpus = args.corpus or replicated_corpus(work / "corpus", args.records, shard_size=1024)
        overrides = [f"data.workers={8 if GPU else 0}"]
        overrides += [f"train.micro_batch={args.micro_batch}"] if args.micro_batch else []
        cfg, p = prepared(config, corpus, work / "run", overrides)
        shipped = cfg.train.micro_batch
        figures: dict = {"device": card, f"{m}_micro_batch": shipped}

        def report() -> None:  # after each part: a run stopped at its time limit keeps what it measured
            emit({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()})

        figures[f"{m}_loop_eager_old_samples_per_s"] = loop_rate(cfg, p, args.warmup, args.steps,
                                                                loss_sync="micro_step")
        figures[f"{m}_loop_eager_samples_per_s"] = loop_rate(cfg, p, args.warmup, args.steps, loss_sync="step")
        figures[f"{m}_probe_features_per_s"] = probe_rate(p, shipped, max(2, args.steps // 5))
        report()
        precision = "bf16" if p.engine.bfloat16_enabled() else "fp32"
        for batch in sorted({*args.sizes, shipped}):
            rate, _ = samples_per_s(bare_name, batch, args.steps, compiled=False, precision=precision)
            figures[f"{m}_bare_b{batch}_samples_per_s"] = rate
        bare = figures[f"{m}_bare_b{shipped}_samples_per_s"]
        figures[f"{m}_loop_vs_bare"] = figures[f"{m}_loop_eager_samples_per_s"] / bare
        figures[f"{m}_new_vs_old_sync"] = (figures[f"{m}_loop_eager_samples_per_s"]
                                           / figures[f"{m}_loop_eager_old_samples_per_s"])
        report()
        if not args.no_compile:
            started = time.perf_counter()
            compile_engine(p.engine, cfg.train)
            figures[f"{m}_loop_compiled_samples_per_s"] = loop_rate(cfg, p, args.warmup, args.steps)
            figures[f"{m}_compile_and_loop_s"] = time.perf_counter() - started
            figures[f"{m}_compiled_vs_eager_loop"] = (figures[f"{m}_loop_compiled_samples_per_s"]
                                                      / figures[f"{m}_loop_eager_samples_per_s"])
            report()
        profile(cfg, p, args.out, m)
        if peak:
            flops = 3 * forward_flops(bare_name)  # a training step: about three forwards
            for mode in ("loop_eager", "loop_compiled", f"bare_b{shipped}"):
                if f"{m}_{mode}_samples_per_s" in figures:
                    figures[f"{m}_mfu_{mode}"] = flops * figures[f"{m}_{mode}_samples_per_s"] / (peak * 1e12)
        report()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
