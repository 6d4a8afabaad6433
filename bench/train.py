"""Training-step overhead and ZeRO memory, on CPU.

    python bench/train.py [--steps 12]

1. ``vs_hand_loop``: time per optimizer step of ecgdist's loop (the pre-training
   ``TrainLoop`` driving a DeepSpeed engine, one rank, configs/deepspeed/zero0.json) over
   a minimal hand-written PyTorch loop (AdamW, BCE, clipping, the same warm-up/cosine
   schedule) with the same Net1D and the same batches from the same loader. Alternating
   runs, best of each. ``vs_hand_loop_zero2_one_rank`` adds what ZeRO-2's flat buffers
   cost when there is only one rank to shard over.
2. Per-rank memory of the full 30.8 M-parameter Net1D at 2 ranks after two steps, for
   the bundled configs/deepspeed/zeroN.json against zero0.json, in bf16 mixed precision
   (how those configs run on GPUs) and, suffixed ``_fp32``, in fp32 (how they run on CPU). ``zeroN_vs_zero0_memory``: model + optimizer
   state (parameters, fp32 master copies, Adam moments); ``zeroN_vs_zero0_live_memory``:
   every tensor the rank holds (adds gradient buffers and ZeRO's buckets).
   ``--memory-only`` skips part 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DS_ACCELERATOR", "cpu")

import torch  # noqa: E402
from common import REPO, emit, replicated_corpus, timed_loop_steps  # noqa: E402

BENCH_MODEL = ["model.widths=[64,160,160,400]", "model.blocks=[2,2,2,3]"]


def bench_config(corpus: Path, run_dir: Path, steps: int):
    from ecgdist.config import PretrainConfig, load_config

    return load_config(PretrainConfig, REPO / "configs/pretrain/ecgfounder_tiny.yaml", [
        f"data.corpus={corpus}", f"run.dir={run_dir}", f"train.steps={steps}", "train.micro_batch=16",
        "train.val_every_steps=100000", "train.val_batches=0", "train.log_every_steps=100000",
        "checkpoint.save_every_steps=0",
        "data.val_fraction=0.01", *BENCH_MODEL])


def time_ours(cfg, warmup: int, steps: int, stage: int) -> float:
    from ecgdist.dist import init_distributed
    from ecgdist.models import build_model
    from ecgdist.pretrain.deepspeed_adapter import initialize
    from ecgdist.pretrain.deepspeed_config import build_ds_config
    from ecgdist.pretrain.data import build_data
    from ecgdist.pretrain.objectives import multilabel_bce
    from ecgdist.models.param_groups import param_groups
    from ecgdist.pretrain.optim import build_adamw, warmup_cosine

    env = init_distributed(single_group=True)
    ds_config, layout = build_ds_config(REPO / f"configs/deepspeed/zero{stage}.json", cfg.train, 1)
    data = build_data(cfg, env)
    torch.manual_seed(0)
    model = build_model(cfg.model, 12, cfg.data.crop_samples, len(data.labels))
    optimizer = build_adamw(param_groups(model, cfg.train.lr_peak, cfg.train.weight_decay), cfg.train.lr_peak)
    scheduler = warmup_cosine(optimizer, warmup + steps, cfg.train.warmup_steps, cfg.train.lr_min_ratio)
    engine = initialize(model, optimizer, scheduler, ds_config, cfg.train)
    return timed_loop_steps(engine, data, multilabel_bce, cfg.train, layout, cfg.run.dir, warmup, steps) / steps


def time_hand_loop(cfg, warmup: int, steps: int) -> float:
    import torch.nn.functional as F

    from ecgdist.dist import DistEnv
    from ecgdist.models import build_model
    from ecgdist.pretrain.data import build_data
    from ecgdist.models.param_groups import param_groups
    from ecgdist.pretrain.optim import build_adamw, warmup_cosine

    data = build_data(cfg, DistEnv(0, 0, 1, "127.0.0.1", 0, "single"))
    torch.manual_seed(0)
    model = build_model(cfg.model, 12, cfg.data.crop_samples, len(data.labels))
    optimizer = build_adamw(param_groups(model, cfg.train.lr_peak, cfg.train.weight_decay), cfg.train.lr_peak)
    scheduler = warmup_cosine(optimizer, warmup + steps, cfg.train.warmup_steps, cfg.train.lr_min_ratio)
    batches = iter(data.stream)
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        batch = data.stream.dataset.to_device(next(batches), "cpu")  # float16 off the loader, finished here
        loss = F.binary_cross_entropy_with_logits(model(batch["signal"]), batch["target"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_grad_norm)
        optimizer.step()
        scheduler.step()
    return (time.perf_counter() - start) / steps


def live_tensor_bytes() -> int:
    """Bytes of every distinct tensor storage alive in this process."""
    gc.collect()
    seen, total = set(), 0
    for obj in gc.get_objects():
        try:
            if not isinstance(obj, torch.Tensor):
                continue
            tensors = [obj] + ([obj.ds_tensor] if hasattr(obj, "ds_tensor") else [])
        except ReferenceError:
            continue
        for t in tensors:
            storage = t.untyped_storage()
            if storage.data_ptr() and storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
    return total


def model_and_optimizer_bytes(engine) -> int:
    """Bytes of what the issue calls model + optimizer state on this rank: the module's
    parameters (ZeRO-3: the rank's partitions), the fp32 master copies and the Adam moments,
    each distinct storage once. Gradient buffers and communication buckets are left out;
    ``live_tensor_bytes`` counts them."""
    base = getattr(engine.optimizer, "optimizer", engine.optimizer)  # ZeRO/bf16 wrappers hold torch's AdamW
    tensors = [t for p in engine.module.parameters() for t in (p, getattr(p, "ds_tensor", None)) if t is not None]
    # the master copies: AdamW's params, and its state keys (ZeRO-3 empties param_groups between steps)
    tensors += [p for group in base.param_groups for p in group["params"]] + list(base.state)
    tensors += [v for state in base.state.values() for v in state.values() if torch.is_tensor(v) and v.dim()]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(nbytes for ptr, nbytes in storages.items() if ptr)


def memory_worker(stage: int, bf16: bool) -> None:
    """One rank: full Net1D, two optimizer steps under ZeRO ``stage``, then count live tensors."""
    from ecgdist.config import TrainSection
    from ecgdist.dist import init_distributed
    from ecgdist.models.net1d import Net1D
    from ecgdist.pretrain.deepspeed_adapter import initialize
    from ecgdist.pretrain.deepspeed_config import build_ds_config
    from ecgdist.models.param_groups import param_groups
    from ecgdist.pretrain.optim import build_adamw

    env = init_distributed()
    torch.manual_seed(0)
    model = Net1D(num_classes=150)
    optimizer = build_adamw(param_groups(model, 1e-3, 0.01), 1e-3)
    train = TrainSection(micro_batch=2)
    ds, _ = build_ds_config(REPO / f"configs/deepspeed/zero{stage}.json", train, env.world_size)
    ds["bf16"]["enabled"] = bf16  # mixed precision as on GPUs (build_ds_config turns it off on CPU)
    engine = initialize(model, optimizer, None, ds, train)
    for _ in range(2):
        x = torch.randn(2, 12, 500, dtype=torch.bfloat16 if bf16 else torch.float32)
        loss = engine(x).float().pow(2).mean()
        engine.backward(loss)
        engine.step()
    del loss
    print(json.dumps({"stage": stage, "rank": env.rank, "state": model_and_optimizer_bytes(engine),
                      "live": live_tensor_bytes()}), flush=True)


def measure_memory(bf16: bool, stages: list[int]) -> dict[int, dict[str, int]]:
    """Largest per-rank bytes ("state" and "live") for each stage, two ranks each."""
    from ecgdist.dist import free_port

    result = {}
    for stage in stages:
        port, procs = str(free_port()), []
        for rank in (0, 1):
            env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
            worker = [sys.executable, __file__, "--memory-worker", str(stage)] + (["--bf16"] if bf16 else [])
            procs.append(subprocess.Popen(worker, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        lines = [json.loads(line) for p in procs for line in p.communicate()[0].splitlines() if line.startswith("{")]
        result[stage] = {kind: max(line[kind] for line in lines) for kind in ("state", "live")}
        print(f"ZeRO-{stage} {'bf16' if bf16 else 'fp32'} per rank (2 ranks): model + optimizer state "
              f"{result[stage]['state'] / 2**20:7.1f} MiB, all live tensors {result[stage]['live'] / 2**20:7.1f} MiB",
              flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-worker", type=int, default=None)
    parser.add_argument("--bf16", action="store_true", help="(memory worker) bf16 mixed precision")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--stages", type=int, nargs="+", default=[0, 1, 2, 3], help="ZeRO stages of the memory part")
    parser.add_argument("--fp32-only", action="store_true", help="memory part: skip the bf16 pass")
    args = parser.parse_args()
    if args.memory_worker is not None:
        return memory_worker(args.memory_worker, args.bf16)
    figures: dict = {}
    if not args.memory_only:
        work = Path(tempfile.mkdtemp(prefix="ecgdist-bench-train-"))
        try:
            figures.update(measure_step_time(work, args))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for bf16, suffix in ((False, "_fp32"),) if args.fp32_only else ((True, ""), (False, "_fp32")):
        memory = measure_memory(bf16, args.stages)  # bf16 is how zeroN.json run on GPUs
        for stage in args.stages:
            for kind, name in (("state", "memory"), ("live", "live_memory")):
                figures[f"zero{stage}_{kind}_mib_per_rank{suffix}"] = round(memory[stage][kind] / 2**20, 1)
                if stage and 0 in memory:
                    figures[f"zero{stage}_vs_zero0_{name}{suffix}"] = round(memory[stage][kind] / memory[0][kind], 3)
    emit(figures)


def measure_step_time(work: Path, args) -> dict:
    """Alternating runs of the hand loop and ours (ZeRO-0 and ZeRO-2 configs); best of each."""
    corpus = replicated_corpus(work / "corpus", 1024)
    ours, ours_zero2, hand = [], [], []
    for i in range(args.repeats):
        hand.append(time_hand_loop(bench_config(corpus, work / f"hand{i}", args.steps), args.warmup, args.steps))
        ours.append(time_ours(bench_config(corpus, work / f"ours{i}", args.steps), args.warmup, args.steps, 0))
        ours_zero2.append(time_ours(bench_config(corpus, work / f"z2{i}", args.steps), args.warmup, args.steps, 2))
        print(f"repeat {i}: ours {ours[-1] * 1e3:.0f} ms/step (ZeRO-2 on one rank {ours_zero2[-1] * 1e3:.0f}), "
              f"hand loop {hand[-1] * 1e3:.0f} ms/step", flush=True)
    return {"ours_ms_per_step": round(min(ours) * 1e3, 1), "hand_ms_per_step": round(min(hand) * 1e3, 1),
            "vs_hand_loop": round(min(ours) / min(hand), 3),
            "vs_hand_loop_zero2_one_rank": round(min(ours_zero2) / min(hand), 3)}


if __name__ == "__main__":
    main()
