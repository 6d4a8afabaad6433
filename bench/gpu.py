"""The GPU figures in one prepared run: the loop against the bare model, pre-training, one
fine-tune job, the loader.

    bash bench/gpu.sh [OUT_DIR] [--only STEP ...]     (about 6 minutes on one H100/H200)

1. ``loop_net1d``, ``loop_mtecg`` (bench/loop.py): each model's shipped config through the
   pre-training loop, eager with the old and the new host-sync path and compiled, against the
   bare training step at 64, 256, 512 and the shipped micro batch (``loop_vs_bare``), MFU from
   counted FLOPs, the probe feature rate, and a profiler table (OUT_DIR/profile_*.txt);
   ``probe``: from those, a PTB-XL probe's seconds and its share of 5000 steps (bench/probe.py);
2. ``pretrain_net1d``: 100 single-GPU steps of the full Net1D through ``python -m
   ecgdist.pretrain`` with ZeRO-2 (samples/s and peak memory read back from its TensorBoard
   events), then ``export`` of it;
3. ``finetune``: one post-training job through ``python -m ecgdist.submit finetune`` on a
   simulated PTB-XL corpus, from that export (wall time, records/s);
4. ``loader``: records/s of normalised batches landing on the device, for 0, 2 and 8
   DataLoader workers, float32 against the float16 hand-off finished on the device.

``--only`` also takes two steps left out of the default run for time: ``pretrain_mtecg`` (the
MTECG-T command run) and ``models`` (bench/models.py, eager against compiled, and the MTECG
classifier). Pre-training and the loader read real PTB-XL records replicated with small
perturbations (``bench/common.py``; ``ECGDIST_SHARED_DATA`` points at ../shared/data when the
repo sits elsewhere). Without a GPU it says so and runs a small CPU smoke pass of the same
steps. Writes ``OUT_DIR/gpu.json``, ``OUT_DIR/summary.md``, the profiles and ``OUT_DIR/logs.tar.gz``
(every command's output); the last line printed is the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import NOT_PTBXL, PTBXL_500, REPO, best_rate, emit, replicated_corpus

from ecgdist.data.dataset import ShardDataset
from ecgdist.data.loader import make_loader
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.transforms import Transform
from ecgdist.tensorboard_log import read_scalars

GPU = torch.cuda.is_available()
# (GPU, CPU smoke) sizes of each step.
SIZE = {"records": (8192, 256), "models_batch": (64, 2), "models_steps": (10, 1), "pretrain_steps": (100, 4),
        "micro_batch": (256, 4), "workers": (8, 0), "finetune_records": (1000, 100), "loader_batch": (256, 32)}
LOOP_ARGS = (["--steps", "30", "--warmup", "5"],  # GPU; CPU smoke: tiny batches, no compiling (minutes on a CPU)
             ["--steps", "1", "--warmup", "1", "--sizes", "2", "--micro-batch", "2", "--no-compile"])
OPTIONAL = ("pretrain_mtecg", "models")  # run when --only names them


def size(key: str) -> int:
    return SIZE[key][0 if GPU else 1]


class Failed(RuntimeError):
    """A command that exited non-zero or outran its time limit; ``output``: what it printed by then."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output


def run(args: list, log: Path, timeout: float) -> tuple[float, str]:
    """Run a command from the repository root; (wall seconds, its output). A failure or a time-out
    raises ``Failed`` with the log's tail; the log holds what the command printed either way."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = " ".join(map(str, args[:4])) + " ..."
    try:
        done = subprocess.run([str(a) for a in args], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as stopped:  # its output so far comes as bytes
        stdout, stderr = (text.decode(errors="replace") if isinstance(text, bytes) else text or ""
                          for text in (stopped.stdout, stopped.stderr))
        log.write_text(stdout + stderr)
        raise Failed(f"{command} stopped at its {timeout:.0f} s limit:\n" + (stdout + stderr)[-3000:], stdout)
    log.write_text(done.stdout + done.stderr)
    if done.returncode:
        raise Failed(f"{command} exited {done.returncode}:\n" + (done.stdout + done.stderr)[-3000:], done.stdout)
    return time.perf_counter() - started, done.stdout


def pretrain(name: str, config: str, corpus: Path, work: Path, logs: Path) -> dict:
    run_dir = work / name
    steps = size("pretrain_steps")
    wall, _ = run([sys.executable, "-m", "ecgdist.pretrain", config, f"data.corpus={corpus}", f"run.dir={run_dir}",
                   f"train.steps={steps}", f"train.micro_batch={size('micro_batch')}",
                   f"train.warmup_steps={max(1, steps // 10)}", f"train.log_every_steps={max(1, steps // 8)}",
                   f"train.val_every_steps={steps}", "train.val_batches=4", f"data.workers={size('workers')}",
                   "data.min_label_count=1", "checkpoint.save_every_minutes=0", "deepspeed=configs/deepspeed/zero2.json",
                   *NOT_PTBXL],
                  logs / f"pretrain_{name}.log", timeout=240)
    tb = {tag: [value for _, value in points] for tag, points in read_scalars(run_dir / "tb").items()}
    rates = tb["train/samples_per_s"][1:] or tb["train/samples_per_s"]  # the first interval holds the warm-up
    return {f"pretrain_{name}_samples_per_s": round(statistics.median(rates), 1),
            f"pretrain_{name}_peak_memory_mib": round(max(tb["train/peak_memory_mb"])),
            f"pretrain_{name}_wall_s": round(wall, 1), f"pretrain_{name}_final_loss": round(tb["train/loss"][-1], 4)}


def finetune(weights: Path, work: Path, logs: Path) -> dict:
    raw, corpus, sweep = work / "simulated", work / "simulated_corpus", work / "sweep"
    run([sys.executable, "-m", "preprocess", "simulate", "ptbxl", raw, "--records", size("finetune_records")],
        logs / "simulate.log", timeout=240)
    run([sys.executable, "-m", "preprocess", "ptbxl", raw, corpus, "--workers", 8 if GPU else 2, "--quiet"],
        logs / "preprocess.log", timeout=120)
    epochs = 3 if GPU else 1
    wall, _ = run([sys.executable, "-m", "ecgdist.submit", "finetune", "configs/finetune/ptbxl.yaml",
                   f"data.corpus={corpus}", f"run.dir={sweep}", "sweep.backbones=[]", f"finetune.weights={weights}",
                   "sweep.tasks=[superdiagnostic]", "sweep.strategies=[post_training]", "sweep.fractions=[1.0]",
                   "sweep.seeds=[0]", f"finetune.epochs={epochs}", "finetune.probe_epochs=1", "finetune.bootstrap=200",
                   "--cluster", "local", "--wait"], logs / "finetune.log", timeout=240)
    result = json.loads(next(sweep.glob("jobs/*/result.json")).read_text())
    seen = result["records"]["train"] * (epochs + 1) + (result["records"]["val"]) * (epochs + 1) + result["records"]["test"]
    return {"finetune_wall_s": round(wall, 1), "finetune_records_per_s": round(seen / wall, 1),
            "finetune_test_macro_auroc_simulated": round(result["macro_auroc"], 4)}


def loader_rates(corpus: Path) -> dict:
    """Records/s of normalised float32 batches on the training device, two ways: finished in the
    loader and copied as float32 (as before), and handed over as float16 and finished on the
    device (``device_transform``, what training uses now)."""
    device = torch.device("cuda" if GPU else "cpu")
    figures = {}
    for name, on_device in (("float32", False), ("device_transform", True)):
        dataset = ShardDataset(corpus, transform=Transform(normalize="ecgfounder"), device_transform=on_device)
        for workers in ((0, 2, 8) if GPU else (0, 2)):
            loader = make_loader(dataset, BlockBatchSampler(dataset.shards_of(), size("loader_batch"), seed=0), workers)

            def drain() -> int:
                count = sum(len(dataset.to_device(batch, device)["signal"]) for batch in loader)
                if GPU:
                    torch.cuda.synchronize()
                return count

            figures[f"loader_{name}_w{workers}_per_s"] = round(best_rate(drain, 2))
    for workers in ((0, 2, 8) if GPU else (0, 2)):
        figures[f"loader_device_transform_vs_float32_w{workers}"] = round(
            figures[f"loader_device_transform_w{workers}_per_s"] / figures[f"loader_float32_w{workers}_per_s"], 3)
    return figures


def probe_cost(figures: dict) -> dict:
    """A PTB-XL probe on this GPU: the loop step's feature rate, the read-out fits on this node's CPU,
    its share of 5000 steps at the loop's measured training rate (bench/probe.py's arithmetic)."""
    from probe import TASK_CLASSES, fit_seconds, interval_cost

    cost = {}
    for m, width in (("net1d", 1024), ("mtecg", 192)):
        if f"{m}_probe_features_per_s" in figures:
            fit_s = sum(fit_seconds(width, classes) for classes in TASK_CLASSES.values())
            cost.update({f"probe_{m}_{k}": round(v, 4) for k, v in interval_cost(
                figures[f"{m}_probe_features_per_s"], fit_s, figures[f"{m}_loop_eager_samples_per_s"],
                figures[f"{m}_micro_batch"], 5000).items()})
            cost[f"probe_{m}_fit_s"] = round(fit_s, 2)
    return cost


def last_json(output: str) -> dict:
    """A benchmark's figures: its last line that is a JSON object (none printed yet: none)."""
    for line in reversed(output.strip().splitlines()):
        try:
            figures = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(figures, dict):
            return figures
    return {}


def summary(figures: dict) -> str:
    lines = [f"# bench/gpu.py on {figures['device']}", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in figures.items() if k != "device"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", default="bench-gpu", type=Path)
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only these steps (export needs pretrain_net1d, finetune needs export)")
    args = parser.parse_args()
    if not PTBXL_500.is_dir():  # ../shared/data does not travel to a lent machine
        print(f"no PTB-XL records at {PTBXL_500}: set ECGDIST_SHARED_DATA, or run bash bench/gpu-prepare.sh "
              "and carry .gpu", file=sys.stderr)
        return 2
    out, work = args.out, Path(tempfile.mkdtemp(prefix="ecgdist-gpu-"))
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    figures: dict = {"device": torch.cuda.get_device_name() if GPU else "cpu", "gpu": GPU,
                     "torch": torch.__version__}
    if not GPU:
        print("no GPU here: a CPU smoke pass of every step (tiny sizes); the figures mean nothing", flush=True)

    def loop(model: str) -> dict:
        try:
            return last_json(run([sys.executable, "bench/loop.py", model, "--out", out, "--corpus", corpus,
                                  *LOOP_ARGS[0 if GPU else 1]], logs / f"loop_{model}.log", timeout=300)[1])
        except Failed as failed:  # keep the parts it measured: bench/loop.py prints its figures after each
            print(f"[loop_{model}] {failed}", flush=True)
            return {**last_json(failed.output), f"loop_{model}_error": str(failed).splitlines()[0][:300]}

    steps = [
        ("loop_net1d", lambda: loop("net1d")),
        ("loop_mtecg", lambda: loop("mtecg")),
        ("probe", lambda: probe_cost(figures)),
        ("pretrain_net1d", lambda: pretrain("net1d", "configs/pretrain/ecgfounder.yaml", corpus, work, logs)),
        ("pretrain_mtecg", lambda: pretrain("mtecg", "configs/pretrain/mtecg_t.yaml", corpus, work, logs)),
        ("export", lambda: {"export_s": round(run([sys.executable, "-m", "ecgdist.export", work / "net1d",
                                                   work / "net1d.pth"], logs / "export.log", timeout=120)[0], 1)}),
        ("finetune", lambda: finetune(work / "net1d.pth", work, logs)),
        ("loader", lambda: loader_rates(corpus)),
        ("models", lambda: last_json(run([sys.executable, "bench/models.py", "--batch", size("models_batch"),
                                          "--steps", size("models_steps"), *([] if GPU else ["--no-compile"])],
                                         logs / "models.log", timeout=240)[1])),
    ]

    def save() -> None:  # after every step: a run stopped at its time limit keeps the steps it finished
        (out / "gpu.json").write_text(json.dumps(figures, indent=1))
        (out / "summary.md").write_text(summary(figures))

    try:
        corpus = replicated_corpus(work / "corpus", size("records"), shard_size=1024)
        for name, step in [(n, s) for n, s in steps if (n not in OPTIONAL if args.only is None else n in args.only)]:
            started = time.perf_counter()
            try:
                figures.update({k: v for k, v in step().items() if k not in ("device", "threads")})
                print(f"[{name}] done in {time.perf_counter() - started:.0f} s", flush=True)
            except (RuntimeError, StopIteration, KeyError) as error:
                figures[f"{name}_error"] = str(error).splitlines()[0][:300]
                print(f"[{name}] FAILED: {error}", flush=True)
            save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        # One file for the logs: a device call brings back at most 8 (with gpu.json, summary.md and the
        # two profiles, 5); a run stopped before this point leaves them loose.
        shutil.make_archive(str(out / "logs"), "gztar", logs)
        shutil.rmtree(logs)
    save()
    print(summary(figures))
    emit(figures)
    return 0 if GPU or not any(k.endswith("_error") for k in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
