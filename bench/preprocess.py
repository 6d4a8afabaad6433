"""Preprocessing throughput and scale.

    python bench/preprocess.py [--records 1200] [--scale-records 0] [--index-records 0]

1. The same WFDB folder (real PTB-XL 500 Hz records, copied under new names) read by bare
   ``wfdb.rdrecord`` (the baseline: what any pipeline must at least do) and sharded by
   ``python -m preprocess wfdb`` with 1 and 2 workers. ``vs_wfdb_read`` = our records/s
   with one worker over the baseline's; ``speedup_2_workers`` = time(1) / time(2). Then
   with the ECGFounder filter (one worker), and that filter's baseline median alone:
   ``median_vs_ndimage`` = time of ``scipy.ndimage.median_filter`` (the baseline, which the
   filter used before) over time of ours, on the same records (checked equal).
2. ``--scale-records N``: the whole pipeline as ``slurm/preprocess.sh`` runs it on N real
   records (plus one broken record per thousand, which must be rejected): ``preprocess
   list`` once, ``--scale-slices`` concurrent slice processes, merge; wall time, records/s,
   the largest process's peak memory, then opening the corpus and reading its index.
3. ``--index-records N``: an N-record corpus (metadata in shards of 1000, signals left
   unallocated): the time merge takes to write its numeric index, then time and peak
   memory of what a pre-training job does at start (open, read the index, hold-out
   split, label targets).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import wfdb
from common import REPO, emit, wfdb_folder


def time_wfdb(folder: Path) -> tuple[float, int]:
    headers = sorted(folder.glob("*.hea"))
    start = time.perf_counter()
    for h in headers:
        wfdb.rdrecord(str(h.with_suffix("")))
    return time.perf_counter() - start, len(headers)


def time_preprocess(folder: Path, out: Path, workers: int, filter_name: str = "none") -> float:
    from ecgdist.data.shards import Recipe
    from preprocess.listing import walk
    from preprocess.pipeline import run

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    manifest = run(walk("wfdb", folder, 500), out, Recipe("wfdb", filter=filter_name), workers=workers,
                   shard_size=100, progress=False)
    elapsed = time.perf_counter() - start
    assert manifest.rejected == 0
    return elapsed


def time_median(folder: Path, records: int) -> tuple[float, float]:
    """Seconds per record of the ECGFounder filter's baseline median: ours, then ``ndimage.median_filter``."""
    from scipy import ndimage

    from ecgdist.data.filters import baseline_kernel, centred_median

    signals = [wfdb.rdrecord(str(h.with_suffix(""))).p_signal.T for h in sorted(folder.glob("*.hea"))[:records]]
    kernel = baseline_kernel(500)
    start = time.perf_counter()
    ours = [centred_median(x, kernel) for x in signals]
    middle = time.perf_counter()
    baseline = [ndimage.median_filter(x, size=(1, kernel), mode="constant") for x in signals]
    end = time.perf_counter()
    assert all(np.array_equal(a, b) for a, b in zip(ours, baseline))
    return (middle - start) / len(signals), (end - middle) / len(signals)


def index_corpus(out: Path, records: int, shard_size: int = 1000) -> Path:
    """Manifest + shards holding metadata only (signals declared, never written: no storage)."""
    from ecgdist.data.index import write_index
    from ecgdist.data.shards import METADATA, SIGNALS, STRING, Manifest, Recipe, ShardEntry, write_manifest

    out.mkdir(parents=True, exist_ok=True)
    recipe, shards = Recipe("bench"), []
    for s, start in enumerate(range(0, records, shard_size)):
        n = min(shard_size, records - start)
        ids = np.arange(start, start + n)
        path = out / f"shard-{s:06d}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset(SIGNALS, shape=(n, 12, 5000), dtype="float16")
            columns = {"record_id": [f"bench:{i}#0" for i in ids], "patient_id": [str(i // 3) for i in ids],
                       "labels": ["NORM;SR" if i % 2 else "MI" for i in ids], "source_path": [""] * n,
                       "age": np.full(n, 60.0), "sex": ids % 2, "fold": 1 + ids % 10, "window": np.zeros(n),
                       "flags": np.zeros(n), "source_fs": np.full(n, 500.0), "fingerprint": ids}
            for name, dtype in METADATA.items():
                values = np.asarray(columns[name], dtype=object if dtype is STRING else dtype)
                f.create_dataset(name, data=values, dtype=dtype)
        shards.append(ShardEntry(path.name, n, "", path.stat().st_size))
    manifest = Manifest(recipe, shards, {"MI": records // 2, "NORM": records // 2, "SR": records // 2},
                        records, records, 0)
    start = time.perf_counter()
    write_index(out, manifest)  # what `python -m preprocess merge` does once
    print(f"merge's index of {records} records: {time.perf_counter() - start:.0f} s", flush=True)
    write_manifest(out, manifest)
    return out


def scale_run(work: Path, records: int, slices: int) -> dict:
    """The whole pipeline at scale, as slurm/preprocess.sh runs it: list the input once, shard it
    in ``slices`` concurrent slice processes (the array tasks), merge. The input is ``records``
    real records (signal files linked) plus one broken record per thousand (signal file cut
    short), which must come back as rejections."""
    folder = wfdb_folder(work / "scale-input", records, link=True)
    broken = max(1, records // 1000)
    for i in range(broken):
        name = f"broken{i:05d}"
        (folder / f"{name}.hea").write_text((folder / "r000000.hea").read_text().replace("r000000", name))
        (folder / f"{name}.dat").write_bytes((folder / "r000000.dat").read_bytes()[:50_000])
    listing, out = work / "scale.listing", work / "scale"
    command = [sys.executable, "-m", "preprocess"]
    start = time.perf_counter()
    subprocess.run([*command, "list", "wfdb", str(folder), str(listing)], check=True, capture_output=True, cwd=REPO)
    listed = time.perf_counter()
    tasks = [subprocess.Popen([*command, "wfdb", str(folder), str(out), "--listing", str(listing), "--quiet",
                               "--slice", f"{i}/{slices}"], cwd=REPO, stdout=subprocess.DEVNULL) for i in range(slices)]
    assert all(task.wait() == 0 for task in tasks)
    sharded = time.perf_counter()
    subprocess.run([*command, "merge", str(out)], check=True, capture_output=True, cwd=REPO)
    merged = time.perf_counter()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["written_inputs"] == records and manifest["rejected"] == broken, manifest["rejected"]
    figures = {"records": records, "rejected": manifest["rejected"], "slices": slices,
               "list_s": round(listed - start, 1), "shard_s": round(sharded - listed, 1),
               "merge_s": round(merged - sharded, 1), "wall_s": round(merged - start, 1),
               "records_per_s": round(records / (merged - start)),
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
               "corpus_gb": round(sum(p.stat().st_size for p in out.glob("*.h5")) / 1e9, 2),
               **{f"open_{k}": v for k, v in open_index(out).items() if k != "records"}}
    shutil.rmtree(out)
    return figures


def open_index(corpus: Path) -> dict:
    """What a pre-training job does at start: open the corpus, read the index, split, targets."""
    from ecgdist.data.dataset import ShardCorpus
    from ecgdist.data.index import read_index
    from ecgdist.data.splits import holdout_mask

    tracemalloc.start()
    start = time.perf_counter()
    c = ShardCorpus(corpus)
    opened = time.perf_counter() - start
    index = read_index(corpus, c.manifest)
    held_out = holdout_mask(index.group, 0.05, seed=0)
    targets = index.targets(sorted(c.manifest.labels))
    indexed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(index.group) == len(c) == targets.shape[0] and 0 < held_out.mean() < 0.1
    return {"records": len(c), "open_manifest_s": round(opened, 3), "read_index_s": round(indexed, 2),
            "index_peak_mib": round(peak / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1200)
    parser.add_argument("--scale-records", type=int, default=0)
    parser.add_argument("--scale-slices", type=int, default=2)
    parser.add_argument("--index-records", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecgdist-bench-pre-"))
    figures: dict = {}
    try:
        folder = wfdb_folder(work / "wfdb", args.records)
        time_wfdb(folder)  # warm the page cache for both sides
        t_wfdb = min(time_wfdb(folder)[0] for _ in range(2))
        t1 = min(time_preprocess(folder, work / "c1", 1) for _ in range(2))
        t2 = min(time_preprocess(folder, work / "c2", 2) for _ in range(2))
        figures.update(records=args.records, wfdb_per_s=round(args.records / t_wfdb),
                       ours_1_worker_per_s=round(args.records / t1), ours_2_workers_per_s=round(args.records / t2),
                       vs_wfdb_read=round(t_wfdb / t1, 3), speedup_2_workers=round(t1 / t2, 3))
        print(f"bare wfdb.rdrecord {args.records / t_wfdb:.0f} rec/s; ours {args.records / t1:.0f} rec/s "
              f"(1 worker), {args.records / t2:.0f} rec/s (2 workers)", flush=True)
        t_filtered = time_preprocess(folder, work / "c3", 1, "ecgfounder")
        ours_median, ndimage_median = time_median(folder, min(args.records, 200))
        figures.update(ours_ecgfounder_filter_1_worker_per_s=round(args.records / t_filtered),
                       median_ms=round(1e3 * ours_median, 2), ndimage_median_ms=round(1e3 * ndimage_median, 2),
                       median_vs_ndimage=round(ndimage_median / ours_median, 1))
        print(f"with the ECGFounder filter {args.records / t_filtered:.0f} rec/s (1 worker); its median "
              f"{1e3 * ours_median:.2f} ms a record, ndimage's {1e3 * ndimage_median:.2f} ms", flush=True)
        if args.scale_records:
            figures["scale"] = scale_run(work, args.scale_records, args.scale_slices)
            print(f"scale run: {figures['scale']}", flush=True)
        if args.index_records:
            figures["index"] = open_index(index_corpus(work / "index", args.index_records))
            print(f"index of {args.index_records} records: {figures['index']}", flush=True)
        figures["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(figures)


if __name__ == "__main__":
    main()
