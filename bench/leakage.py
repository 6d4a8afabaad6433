"""Leakage checks at scale: a 7-million-record pre-training set against a full-size PTB-XL.

    python bench/leakage.py [--train-records 7000000] [--eval-records 21799]

The pre-training corpus is an index only (its shard files are never opened by these
checks): 7 M random 64-bit fingerprints, 2,000 of them planted from PTB-XL's folds 9-10.
The evaluation corpus is a real one-shard corpus of 21,799 records (folds 1-10, tiny
signals). Measured, each with seconds and the peak of memory allocated on top
(tracemalloc, which numpy reports to):

- ``exclude``: ``TrainingSet.build``, what pre-training with ``data.exclude_from`` runs;
- ``check``: ``overlap_by_fold`` of the export's training set against folds 9-10, what
  a fine-tune job runs before training;
- the export's fingerprint set on disk (bytes) and loaded back with ``weights_only``.

Baseline: the same check with a Python ``set`` of the training fingerprints, as one
would write it first; ``check_vs_python_set`` is its time divided by ours.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from common import emit

from ecgdist.data.index import INDEX_DIR, save_array, write_checksums, write_index
from ecgdist.data.leakage import TrainingSet, overlap_by_fold
from ecgdist.data.shards import MANIFEST_NAME, METADATA, Manifest, Recipe, ShardEntry, write_manifest, write_shard

PLANTED = 2000


def measured(work):
    """(result, seconds, peak MiB allocated during ``work``)."""
    tracemalloc.start()
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def evaluation_corpus(out: Path, records: int, rng: np.random.Generator) -> np.ndarray:
    """A PTB-XL-sized corpus (real shard, 1-sample signals); returns its fingerprints."""
    out.mkdir(parents=True)
    fingerprints = rng.integers(0, 2**63, records, dtype=np.int64).astype(np.uint64)
    meta = {name: [] for name in METADATA}
    for i in range(records):
        for name, value in {"record_id": f"ptbxl:{i}#0", "patient_id": str(i), "labels": "NORM", "source_path": "",
                            "age": 50.0, "sex": 0, "fold": 1 + i % 10, "window": 0, "flags": 0, "source_fs": 500.0,
                            "fingerprint": fingerprints[i]}.items():
            meta[name].append(value)
    recipe = Recipe("ptbxl", seconds=0.002)
    shard = write_shard(out / "shard-000000.h5", np.zeros((records, 12, 1), np.float16), meta, recipe)
    manifest = Manifest(recipe, [shard], {"NORM": records}, records, records, 0)
    write_index(out, manifest)
    write_manifest(out, manifest)
    return fingerprints


def training_index(out: Path, records: int, planted: np.ndarray, rng: np.random.Generator) -> None:
    """A pre-training corpus's manifest and index, without shard files (the checks never open them)."""
    (out / INDEX_DIR).mkdir(parents=True)
    fingerprints = rng.integers(0, 2**63, records, dtype=np.int64).astype(np.uint64)
    fingerprints[rng.choice(records, len(planted), replace=False)] = planted
    shards = [ShardEntry(f"shard-{i:06d}.h5", int(n), "", 0) for i, n in enumerate(np.diff(np.linspace(0, records, 8,
                                                                                                   dtype=int)))]
    manifest = Manifest(Recipe("mimic-iv-ecg"), shards, {}, records, records, 0)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict()))
    arrays = {"group": np.zeros(records, np.uint32), "fold": np.zeros(records, np.int8),
              "label_indptr": np.zeros(records + 1, np.int64), "label_indices": np.zeros(0, np.int32),
              "identity": np.zeros(records, np.uint64), "fingerprint": fingerprints}
    for name, array in arrays.items():
        save_array(out / INDEX_DIR, name, array)
    write_checksums(out / INDEX_DIR)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-records", type=int, default=7_000_000)
    parser.add_argument("--eval-records", type=int, default=21_799)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="ecgdist-leakage-"))
    try:
        ptbxl, train = work / "ptbxl", work / "train"
        evaluation = evaluation_corpus(ptbxl, args.eval_records, rng)
        folds = 1 + np.arange(args.eval_records) % 10
        planted = rng.choice(evaluation[np.isin(folds, [9, 10])], PLANTED, replace=False)
        training_index(train, args.train_records, planted, rng)

        training, exclude_s, exclude_mb = measured(lambda: TrainingSet.build(train, ptbxl, [9, 10]))
        assert training.excluded == PLANTED, training.excluded
        with_leak = np.unique(np.concatenate([training.fingerprints, planted]))  # weights that did see them
        overlap, check_s, check_mb = measured(lambda: overlap_by_fold(ptbxl, with_leak, [9, 10]))
        assert sum(count for count, _ in overlap.values()) == PLANTED

        def python_set_check() -> int:
            seen = set(with_leak.tolist())
            return sum(f in seen for f in evaluation[np.isin(folds, [9, 10])].tolist())

        found, baseline_s, baseline_mb = measured(python_set_check)
        assert found == PLANTED
        path = work / "fingerprints.pth"
        torch.save({"fingerprints": torch.from_numpy(with_leak.view(np.int64))}, path)
        _, load_s, _ = measured(lambda: torch.load(path, weights_only=True))
        figures = {"train_records": args.train_records, "eval_records": args.eval_records,
                   "exclude_s": round(exclude_s, 2), "exclude_peak_mib": round(exclude_mb),
                   "check_s": round(check_s, 2), "check_peak_mib": round(check_mb),
                   "python_set_check_s": round(baseline_s, 2), "python_set_peak_mib": round(baseline_mb),
                   "check_vs_python_set": round(baseline_s / check_s, 1),
                   "export_fingerprints_mib": round(path.stat().st_size / 2**20, 1), "export_load_s": round(load_s, 2)}
        print(f"exclusion over {args.train_records:,} records: {exclude_s:.2f} s, peak {exclude_mb:.0f} MiB; "
              f"fine-tune check: {check_s:.2f} s, peak {check_mb:.0f} MiB ({baseline_s / check_s:.1f}x faster than "
              f"a Python set: {baseline_s:.2f} s, {baseline_mb:.0f} MiB); export set "
              f"{figures['export_fingerprints_mib']} MiB, loaded in {load_s:.2f} s")
        emit(figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
