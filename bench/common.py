"""Shared by the benchmarks: timing, a corpus of replicated real records, the JSON last line.

Absolute times mean little on shared machines; every benchmark reports ratios against a
baseline measured in the same run, and repeats each measurement, keeping the best.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import wfdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_DATA = Path(os.environ.get("ECGDIST_SHARED_DATA", REPO.parent / "shared" / "data"))  # a copy elsewhere: set this
PTBXL_500 = SHARED_DATA / "ptbxl-mini" / "records500" / "06000"
# Overrides for the shipped full-size configs on a replicated corpus, which holds no PTB-XL folds to
# leave out of pre-training or to probe (bench/probe.py measures what probes cost).
NOT_PTBXL = ["data.exclude_from=''", "probe.every_steps=0"]


def best_rate(work: Callable[[], int], repeats: int = 3) -> float:
    """Items per second of ``work`` (which returns how many items it did), best of ``repeats``."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        best = max(best, items / (time.perf_counter() - start))
    return best


def best_rates_interleaved(works: dict[str, Callable[[], int]], rounds: int = 6) -> dict[str, float]:
    """``best_rate`` of each work, running them in turn each round: every one sees the same spells
    of a noisy machine, so their ratios hold better than when each is timed in one stretch."""
    best = dict.fromkeys(works, 0.0)
    for _ in range(rounds):
        for name, work in works.items():
            best[name] = max(best[name], best_rate(work, repeats=1))
    return best


def real_records() -> list[np.ndarray]:
    """The ten real 500 Hz PTB-XL records, (12, 5000) float32 in mV."""
    return [wfdb.rdrecord(str(PTBXL_500 / f"0600{i}_hr")).p_signal.T.astype(np.float32) for i in range(10)]


def replicated_corpus(out: Path, records: int, shard_size: int = 1000, seed: int = 0) -> Path:
    """A shard corpus of ``records`` real records replicated with small perturbations."""
    from ecgdist.data.index import write_index
    from ecgdist.data.shards import METADATA, Manifest, Recipe, write_manifest, write_shard

    if (out / "manifest.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = np.stack(real_records())
    recipe = Recipe("ptbxl")
    shards = []
    for s, start in enumerate(range(0, records, shard_size)):
        n = min(shard_size, records - start)
        picks = rng.integers(0, len(base), n)
        signals = base[picks] * rng.uniform(0.9, 1.1, (n, 1, 1)) + rng.normal(0, 0.01, (n, 12, 5000))
        meta = {name: [] for name in METADATA}
        for i in range(n):
            for name, value in {"record_id": f"bench:{start + i}#0", "patient_id": str(start + i), "labels": "NORM",
                                "source_path": "", "age": 50.0, "sex": i % 2, "fold": 1 + i % 10, "window": 0,
                                "flags": 0, "source_fs": 500.0, "fingerprint": start + i}.items():
                meta[name].append(value)
        shards.append(write_shard(out / f"shard-{s:06d}.h5", signals.astype(np.float32), meta, recipe))
    manifest = Manifest(recipe, shards, {"NORM": records}, records, records, 0)
    write_index(out, manifest)
    write_manifest(out, manifest)
    return out


def wfdb_folder(out: Path, records: int, link: bool = False) -> Path:
    """``records`` copies of the ten real 500 Hz records, each under its own name (``link``: the
    signal files as symbolic links, so a 100,000-record folder takes megabytes, not 12 GB)."""
    out.mkdir(parents=True, exist_ok=True)
    for i in range(records):
        source = f"0600{i % 10}_hr"
        name = f"r{i:06d}"
        (out / f"{name}.hea").write_text((PTBXL_500 / f"{source}.hea").read_text().replace(source, name))
        if link:
            (out / f"{name}.dat").symlink_to(PTBXL_500.resolve() / f"{source}.dat")
        else:
            shutil.copyfile(PTBXL_500 / f"{source}.dat", out / f"{name}.dat")
    return out


def timed_loop_steps(engine, data, objective, train, layout, run_dir: Path, warmup: int, steps: int,
                     synchronize: Callable[[], None] = lambda: None) -> float:
    """Seconds of ``steps`` pre-training ``TrainLoop`` steps after ``warmup`` untimed ones (compiling,
    if any, happens there), saving nothing: the baselines they are compared with save nothing either."""
    import dataclasses

    from ecgdist.pretrain.checkpoint import Checkpointer
    from ecgdist.pretrain.engine import TrainLoop

    class NeverSave(Checkpointer):
        def due(self, step: int, last_step: bool) -> bool:
            return False

    loop = TrainLoop(engine, data.stream, data.val, objective, dataclasses.replace(train, steps=warmup), layout,
                     NeverSave(Path(run_dir) / "checkpoints"))
    loop.run(0)
    synchronize()
    loop.train = dataclasses.replace(train, steps=warmup + steps)
    start = time.perf_counter()
    loop.run(warmup)
    synchronize()
    return time.perf_counter() - start


def emit(figures: dict) -> None:
    """The benchmark's last line: one JSON object."""
    print(json.dumps(figures))
