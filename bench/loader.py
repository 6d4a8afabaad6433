"""Loader throughput: ecgdist's shard loader against WFDB per-record reads and a raw numpy memmap.

    python bench/loader.py [--records 4096] [--batch 64]

Same records, same batch order, same DataLoader set-up for 0, 1 and 2 workers; raw
(float32 conversion only) and with the ECGFounder normalisation. WFDB baseline: one
``wfdb.rdrecord`` per record, as most ECG codebases load. Memmap baseline: the same
float16 bytes in one .npy file, fancy-indexed per batch, then the same transform as
ours (the practical limit: only the read path differs).

Headlines: ``vs_memmap_*`` is the worst ratio over the worker counts (same set-up on
both sides); ``vs_wfdb_*`` compares each loader at its own best worker count, as a user
would run each.

Hand-off: ``workers_vs_inprocess`` is the rate at which normalised float32 batches (the
tensor a training step consumes) reach the training process through 2 DataLoader workers
over the rate with none, same batches, both through ``make_loader`` as training runs it.
The workers hand over float16 (``device_transform``) and the training process finishes the
batch (here on the CPU, standing in for the GPU). ``device_transform_w1_per_s`` /
``_w2_per_s``: records/s into the training process, finished there, at 1 and 2 workers;
``device_transform_received_*``: records/s as handed over, not finished
(what the training process itself pays when a GPU finishes). ``workers_vs_inprocess_float32``:
the same ratio when the workers finish float32 batches themselves. Each configuration runs
in turn, several rounds, in each of ``--processes`` fresh processes, best kept (see
``hand_off_in_processes`` for why); ``workers_vs_inprocess_each_process`` lists the ratio
within each process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import wfdb  # noqa: E402
from common import PTBXL_500, best_rate, best_rates_interleaved, emit, replicated_corpus
from torch.utils.data import DataLoader, Dataset

from ecgdist.data.dataset import ShardCorpus, ShardDataset, keep_batch
from ecgdist.data.loader import make_loader, share_cores_with_workers
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.transforms import Transform


class MemmapDataset(Dataset):
    def __init__(self, path: Path, transform: Transform) -> None:
        self.path, self.transform, self.array = path, transform, None

    def __len__(self) -> int:
        return len(np.load(self.path, mmap_mode="r"))

    def __getitems__(self, positions):
        if self.array is None:
            self.array = np.load(self.path, mmap_mode="r")
        x = self.array[np.asarray(positions)]  # float16, converted by the same transform as ours
        return {"signal": torch.from_numpy(self.transform(x, np.random.default_rng(0)))}


class WfdbDataset(Dataset):
    """One record file read per sample: the usual ECG loader."""

    def __init__(self, count: int, normalize: str) -> None:
        self.count, self.normalize = count, normalize

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        x = wfdb.rdrecord(str(PTBXL_500 / f"0600{i % 10}_hr")).p_signal.T.astype(np.float32)
        if self.normalize == "ecgfounder":
            x = (x - x.mean()) / (x.std() + 1e-8)
        return torch.from_numpy(x)


def drain(loader) -> int:
    n = 0
    for batch in loader:
        n += len(batch["signal"] if isinstance(batch, dict) else batch)
    return n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=4096)
    parser.add_argument("--wfdb-records", type=int, default=384)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes the hand-off is measured in")
    parser.add_argument("--hand-off-in", type=Path, help=argparse.SUPPRESS)  # one such process, on this corpus
    args = parser.parse_args()
    if args.hand_off_in:
        return emit(hand_off(args.hand_off_in, args.batch))
    work = Path(tempfile.mkdtemp(prefix="ecgdist-bench-"))
    try:
        emit(measure(work, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, args) -> dict:
    corpus = replicated_corpus(work / "corpus", args.records)
    flat = work / "flat.npy"
    np.save(flat, ShardCorpus(corpus).read(np.arange(args.records)).astype(np.float16))
    figures: dict = {"records": args.records, "batch": args.batch}
    for mode in ("none", "ecgfounder"):
        transform = Transform(normalize=mode)
        label = "raw" if mode == "none" else "transformed"
        for workers in (0, 1, 2):
            ours = ShardDataset(corpus, transform=transform)
            sampler = BlockBatchSampler(ours.shards_of(), args.batch, seed=0)
            extra = dict(persistent_workers=True, prefetch_factor=4) if workers else {}
            ours_loader = DataLoader(ours, batch_sampler=sampler, num_workers=workers, collate_fn=keep_batch, **extra)
            memmap_loader = DataLoader(MemmapDataset(flat, transform), batch_sampler=sampler, num_workers=workers,
                                       collate_fn=keep_batch, **extra)
            wfdb_loader = DataLoader(WfdbDataset(args.wfdb_records, mode), batch_size=args.batch,
                                     num_workers=workers, **extra)
            rates = {"ours": best_rate(lambda: drain(ours_loader), repeats=5),
                     "memmap": best_rate(lambda: drain(memmap_loader), repeats=5),
                     "wfdb": best_rate(lambda: drain(wfdb_loader), repeats=2)}
            for name, rate in rates.items():
                figures[f"{name}_{label}_w{workers}_per_s"] = round(rate)
            figures[f"vs_memmap_{label}_w{workers}"] = round(rates["ours"] / rates["memmap"], 3)
            figures[f"vs_wfdb_{label}_w{workers}"] = round(rates["ours"] / rates["wfdb"], 1)
            print(f"{label:11s} workers={workers}: ours {rates['ours']:8.0f}/s  memmap {rates['memmap']:8.0f}/s  "
                  f"wfdb {rates['wfdb']:6.0f}/s  -> {rates['ours'] / rates['memmap']:.2f}x memmap, "
                  f"{rates['ours'] / rates['wfdb']:.0f}x wfdb", flush=True)
        # Headline: the worst case over worker counts.
        figures[f"vs_memmap_{label}"] = min(figures[f"vs_memmap_{label}_w{w}"] for w in (0, 1, 2))
        best = {name: max(figures[f"{name}_{label}_w{w}_per_s"] for w in (0, 1, 2)) for name in ("ours", "wfdb")}
        figures[f"vs_wfdb_{label}"] = round(best["ours"] / best["wfdb"], 1)
    figures.update(hand_off_in_processes(corpus, args.batch, args.processes))
    return figures


def into_training_step(dataset: ShardDataset, batches: list, workers: int, finish: bool = True,
                       epochs: int = 2) -> Callable[[], int]:
    """A pass over ``epochs`` x ``batches`` through ``make_loader`` (persistent workers, cores shared
    as a training process with that loader shares them), counting records delivered to this process
    as the float32 tensor a training step consumes (``finish``), or as handed over (what the
    training process pays when a GPU finishes the batch)."""
    loader = make_loader(dataset, batches * epochs, workers)

    def one_pass() -> int:
        share_cores_with_workers(workers)  # several loaders live here at once: each pass as its own process
        count = 0
        for batch in loader:
            count += len(dataset.to_device(batch, "cpu")["signal"] if finish else batch["signal"])
        return count
    return one_pass


def hand_off(corpus: Path, batch: int) -> dict:
    """Records/s of every hand-off configuration, measured in turn in this one process."""
    on_device, float32 = (ShardDataset(corpus, transform=Transform(), device_transform=d) for d in (True, False))
    batches = [b.tolist() for b in BlockBatchSampler(on_device.shards_of(), batch, seed=0).batches(0)]
    passes = {f"device_transform_w{w}_per_s": into_training_step(on_device, batches, w) for w in (0, 1, 2)}
    passes |= {f"device_transform_received_w{w}_per_s": into_training_step(on_device, batches, w, finish=False)
               for w in (0, 2)}
    passes |= {f"float32_w{w}_per_s": into_training_step(float32, batches, w) for w in (0, 2)}
    return {name: round(rate) for name, rate in best_rates_interleaved(passes, rounds=4).items()}


def hand_off_in_processes(corpus: Path, batch: int, processes: int) -> dict:
    """``hand_off`` in several fresh processes, each configuration's best over them: the loaders
    measured earlier in this script stay out of these figures, and the per-process ratios show
    how much one process's figure moves on a shared machine."""
    runs = []
    for _ in range(processes):
        out = subprocess.run([sys.executable, __file__, "--hand-off-in", str(corpus), "--batch", str(batch)],
                             check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    figures = {name: max(run[name] for run in runs) for name in runs[0]}
    print(f"float16 finished in the training process: {figures['device_transform_w0_per_s']}/s in-process, "
          f"{figures['device_transform_w1_per_s']}/s with 1 worker, {figures['device_transform_w2_per_s']}/s with 2; "
          f"as handed over: {figures['device_transform_received_w0_per_s']}/s in-process, "
          f"{figures['device_transform_received_w2_per_s']}/s with 2; float32 finished in the loader: "
          f"{figures['float32_w0_per_s']}/s in-process, {figures['float32_w2_per_s']}/s with 2", flush=True)
    figures["workers_vs_inprocess"] = round(figures["device_transform_w2_per_s"] / figures["device_transform_w0_per_s"], 3)
    figures["workers_vs_inprocess_float32"] = round(figures["float32_w2_per_s"] / figures["float32_w0_per_s"], 3)
    figures["workers_vs_inprocess_each_process"] = [
        round(run["device_transform_w2_per_s"] / run["device_transform_w0_per_s"], 3) for run in runs]
    return figures


if __name__ == "__main__":
    main()
