"""Are pre-training batches samples of the corpus, and at what cost in loader speed?

    python bench/shuffle.py [--shards 100] [--shard-size 40] [--batch 64]

A WFDB folder of real PTB-XL records copied under new names, listed in patient order
(each synthetic patient owns 1 to 6 consecutive records, as MIMIC-IV-ECG lists a
patient's folder), is sharded by the real pipeline (seeded placement) and sampled by
``BlockBatchSampler`` (blocks of several shards per batch). Baseline, measured in the same
run on the same listing: the previous design, records placed in input order and a batch
cut from the blocks of one shard after another (re-stated below as ``previous_batches``).

Figures: ``distinct_shards_per_batch`` (mean); ``patient_pairs_vs_uniform``: same-patient
record pairs per batch over the expected number in a uniformly random batch (goal <= 1.5);
``rate_vs_block_sampler``: records/s the DataLoader delivers with this sampler over the
previous sampler's, on the same corpus, worst of 0 and 2 workers (goal >= 0.8).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, best_rate, emit, wfdb_folder
from torch.utils.data import DataLoader

from ecgdist.data.dataset import ShardDataset, keep_batch
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.shards import read_metadata


def previous_batches(shard_of: np.ndarray, batch: int, seed: int, epoch: int) -> list[list[int]]:
    """The sampler before blocks were spread over shards: shards in random order, each shard's
    blocks (a quarter batch, start shifted) shuffled and taken before the next shard's."""
    rng = np.random.default_rng([seed, epoch])
    block = batch // 4
    positions = np.argsort(shard_of, kind="stable")
    _, starts = np.unique(shard_of[positions], return_index=True)
    groups = np.split(positions, starts[1:])
    pieces = []
    for g in rng.permutation(len(groups)):
        shift = int(rng.integers(block))
        blocks = [b for b in np.split(groups[g], list(range(shift, len(groups[g]), block))) if len(b)]
        pieces.extend(blocks[i] for i in rng.permutation(len(blocks)))
    order = np.concatenate(pieces)
    return [order[i:i + batch].tolist() for i in range(0, len(order) - batch + 1, batch)]


def patient_pairs(batches: list, patient: np.ndarray) -> float:
    """Mean same-patient record pairs per batch."""
    pairs = [(lambda c: (c * (c - 1) // 2).sum())(np.unique(patient[np.asarray(b)], return_counts=True)[1])
             for b in batches]
    return float(np.mean(pairs))


def uniform_pairs(patient: np.ndarray, batch: int) -> float:
    """Expected same-patient pairs in a batch drawn uniformly without replacement."""
    sizes = np.unique(patient, return_counts=True)[1].astype(float)
    n = len(patient)
    return batch * (batch - 1) / 2 * (sizes * (sizes - 1)).sum() / (n * (n - 1))


def drain(dataset: ShardDataset, batches: list, workers: int) -> int:
    extra = dict(persistent_workers=False, prefetch_factor=4) if workers else {}
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers, collate_fn=keep_batch, **extra)
    return sum(len(b["signal"]) for b in loader)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--shard-size", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    records = args.shards * args.shard_size
    work = Path(tempfile.mkdtemp(prefix="ecgdist-bench-shuffle-"))
    try:
        folder = wfdb_folder(work / "wfdb", records, link=True)
        subprocess.run([sys.executable, "-m", "preprocess", "wfdb", str(folder), str(work / "corpus"), "--quiet",
                        "--workers", "2", "--shard-size", str(args.shard_size)], check=True, cwd=REPO)
        emit(measure(work / "corpus", records, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(corpus: Path, records: int, args) -> dict:
    rng = np.random.default_rng(0)
    patient_of_input = np.repeat(np.arange(records), rng.integers(1, 7, records))[:records]  # in input order
    dataset = ShardDataset(corpus)
    ids = read_metadata(corpus, ["record_id"])["record_id"]
    input_position = np.array([int(r.split(":r")[1].split("#")[0]) for r in ids])  # r000123 -> 123
    patient = patient_of_input[input_position]
    sampler = BlockBatchSampler(dataset.shards_of(), args.batch, seed=0, drop_last=True)
    ours = [b.tolist() for b in sampler.batches(0)]
    previous_same_corpus = previous_batches(dataset.shards_of(), args.batch, 0, 0)
    previous_input_order = previous_batches(np.arange(records) // args.shard_size, args.batch, 0, 0)
    uniform = uniform_pairs(patient, args.batch)
    figures = {"records": records, "shards": args.shards, "batch": args.batch,
               "distinct_shards_per_batch": round(float(np.mean([len(np.unique(dataset.shards_of()[b]))
                                                                  for b in ours])), 2),
               "previous_distinct_shards_per_batch": round(float(np.mean(
                   [len(np.unique(dataset.shards_of()[b])) for b in previous_same_corpus])), 2),
               "uniform_patient_pairs_per_batch": round(uniform, 3),
               "same_patient_pairs_per_batch": round(patient_pairs(ours, patient), 3),
               "previous_same_patient_pairs_per_batch": round(patient_pairs(previous_input_order, patient_of_input), 3)}
    figures["patient_pairs_vs_uniform"] = round(figures["same_patient_pairs_per_batch"] / uniform, 2)
    figures["previous_patient_pairs_vs_uniform"] = round(figures["previous_same_patient_pairs_per_batch"] / uniform, 2)
    print(f"shards per batch {figures['distinct_shards_per_batch']} (previous sampler "
          f"{figures['previous_distinct_shards_per_batch']}); same-patient pairs per batch "
          f"{figures['patient_pairs_vs_uniform']}x uniform (previous design "
          f"{figures['previous_patient_pairs_vs_uniform']}x)", flush=True)
    for workers in (0, 2):
        drain(dataset, ours, workers)  # page cache warm for both
        rate = best_rate(lambda: drain(dataset, ours, workers))
        previous = best_rate(lambda: drain(dataset, previous_same_corpus, workers))
        figures[f"rate_w{workers}_per_s"], figures[f"previous_rate_w{workers}_per_s"] = round(rate), round(previous)
        figures[f"rate_vs_block_sampler_w{workers}"] = round(rate / previous, 3)
        print(f"workers={workers}: {rate:.0f} rec/s, previous sampler {previous:.0f} rec/s", flush=True)
    figures["rate_vs_block_sampler"] = min(figures[f"rate_vs_block_sampler_w{w}"] for w in (0, 2))
    return figures


if __name__ == "__main__":
    main()
