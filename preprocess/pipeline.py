"""The sharding pipeline: list a source, cut it into chunks, one shard per chunk, in parallel.

A chunk is ``shard_size`` input records drawn from a seeded permutation of the source's
whole listing (kept in listing order within the chunk, so a source file is read front to
back), so every shard is a random sample of the corpus and one patient's records, which
sources list next to each other, land in different shards. Chunk i always holds the same
records for the same listing and seed and yields the same shard: that is what makes reruns
resume, ``--slice I/N`` runs of a job array disjoint, and their merge equal to a single
run. A chunk is finished when its part file (parts/chunk-NNNNNN.json) exists; it is
written after the shard's rename, so a crash at any point leaves either nothing or a
complete shard that the rerun finds. ``merge`` turns the part files into the manifest.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ecgdist.data.fingerprint import record_fingerprint
from ecgdist.data.index import write_index
from ecgdist.data.shards import METADATA, REJECTED_NAME, Manifest, Recipe, ShardEntry, write_manifest, write_shard
from ecgdist.data.windows import make_windows
from ecgdist.files import atomic_write_text
from preprocess.download import DOWNLOAD_RECORD
from preprocess.listing import Listing
from preprocess.record import RecordError, Rejection, SourceError, SourceItem
from preprocess.simulate import MARKER as SIMULATED_MARKER
from preprocess.sources import SOURCES

log = logging.getLogger(__name__)
PARTS = "parts"
LISTING_PART = "listing.json"
RECIPE_FILE = "recipe.json"
LAYOUT_FILE = "layout.json"  # input folder, its listing's digest, shard size, slice count


class ChunksUnfinished(SourceError):
    """Merge was asked for while other slices still run: not a failure of the run."""


def chunk_part_name(chunk: int) -> str:
    return f"chunk-{chunk:06d}.json"


def shard_name(chunk: int) -> str:
    return f"shard-{chunk:06d}.h5"


@dataclass
class ChunkTask:
    chunk: int
    total_chunks: int
    items: list[SourceItem]
    recipe: Recipe
    output: str


def process_chunk(task: ChunkTask) -> dict:
    """Read, window and write one chunk; returns (and saves) its part summary."""
    reader = SOURCES[task.recipe.source]
    signals: list[np.ndarray] = []
    columns: dict[str, list] = {name: [] for name in METADATA}
    rejected: list[dict] = []
    labels: Counter = Counter()
    written = 0
    for item in task.items:
        record_id = f"{task.recipe.source}:{item.key}"
        try:
            raw = reader.read_item(item)
            windows = make_windows(raw, task.recipe)
            fingerprint = record_fingerprint(raw)
        except RecordError as error:
            rejected.append(Rejection(record_id, item.path, str(error)).to_dict())
            continue
        except Exception as error:  # a reader bug or an unforeseen file: report it, keep going
            rejected.append(Rejection(record_id, item.path, f"unreadable: {type(error).__name__}: {error}").to_dict())
            continue
        meta = raw.meta if raw.meta is not None else item.meta  # header comments, else the source's index
        written += 1
        for index, (window, flags) in enumerate(windows):
            signals.append(window)
            values = {"record_id": f"{record_id}#{index}", "patient_id": meta.patient_id,
                      "labels": ";".join(meta.labels), "source_path": raw.path or item.path, "age": meta.age, "sex": meta.sex,
                      "fold": meta.fold, "window": index, "flags": flags, "source_fs": raw.fs,
                      "fingerprint": fingerprint}
            for name, value in values.items():
                columns[name].append(value)
            labels.update(meta.labels)
    out = Path(task.output)
    shard = None
    if signals:
        shard = write_shard(out / shard_name(task.chunk), np.stack(signals), columns, task.recipe).__dict__
    part = {"chunk": task.chunk, "total_chunks": task.total_chunks, "inputs": len(task.items),
            "written_inputs": written, "shard": shard, "labels": dict(labels), "rejected": rejected}
    atomic_write_text(out / PARTS / chunk_part_name(task.chunk), json.dumps(part))
    return part


def chunk_members(records: int, shard_size: int, seed: int) -> list[np.ndarray]:
    """Listing positions of each chunk: consecutive ``shard_size`` runs of a permutation of
    every position drawn from ``seed``, each sorted."""
    order = np.random.default_rng(seed).permutation(records)
    return [np.sort(order[start:start + shard_size]) for start in range(0, max(records, 1), shard_size)]


def slice_chunks(total_chunks: int, slice_index: int, slice_count: int) -> range:
    """Contiguous, disjoint ranges of chunks; together they cover every chunk once."""
    bounds = np.linspace(0, total_chunks, slice_count + 1).round().astype(int)
    return range(bounds[slice_index], bounds[slice_index + 1])


def check_recipe(output: Path, recipe: Recipe) -> None:
    """A rerun must use the recipe the output was started with."""
    path = output / RECIPE_FILE
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != recipe.to_dict():
            changed = sorted(k for k in previous if previous[k] != recipe.to_dict().get(k))
            raise SourceError(f"{output} was made with a different recipe ({', '.join(changed)} differ); "
                              "use a new output folder")
    else:
        atomic_write_text(path, json.dumps(recipe.to_dict()))


def check_layout(output: Path, layout: dict) -> None:
    """A rerun must cut the same input listing into the same chunks and slices as the run it
    continues: another shard size would keep some records twice and drop others, another input
    would return the old corpus as if it were the new one."""
    path = output / LAYOUT_FILE
    if not path.exists():
        atomic_write_text(path, json.dumps(layout))
        return
    previous = json.loads(path.read_text())
    changed = [k for k in layout if previous.get(k) != layout[k]]
    if changed:
        what = "; ".join(f"{k}: {previous.get(k)} then, {layout[k]} now" for k in changed)
        raise SourceError(f"{output} was started from other inputs or settings ({what}); nothing was changed. "
                          "Rerun with the same command, or use a new output folder")


def run(listing: Listing, output: Path, recipe: Recipe, workers: int = 1, shard_size: int = 1000,
        slice_index: int = 0, slice_count: int = 1, seed: int = 0, progress: bool = True) -> Manifest | None:
    """Process this slice's chunks (skipping finished ones); merge when it is the only slice."""
    input_dir = Path(listing.header["input"])
    output.mkdir(parents=True, exist_ok=True)
    (output / PARTS).mkdir(exist_ok=True)
    check_recipe(output, recipe)
    check_layout(output, {"input": listing.header["input"], "records": len(listing),
                          "listing_sha256": listing.header["sha256"], "shard_size": shard_size,
                          "slice_count": slice_count, "placement_seed": seed})
    for name in getattr(SOURCES[recipe.source], "CORPUS_FILES", ()):  # label definitions travel with the corpus
        if (input_dir / name).exists() and not (output / name).exists():
            shutil.copyfile(input_dir / name, output / name)
    members = chunk_members(len(listing), shard_size, seed)
    if slice_index == 0:
        extra = {"simulated": True} if (input_dir / SIMULATED_MARKER).exists() else {}
        if (input_dir / DOWNLOAD_RECORD).exists():  # the release the input was downloaded from
            extra["source_version"] = json.loads((input_dir / DOWNLOAD_RECORD).read_text())["version"]
        atomic_write_text(output / PARTS / LISTING_PART, json.dumps(
            {"total_chunks": len(members), "inputs": len(listing.rejections), "placement_seed": seed,
             "rejected": [r.to_dict() for r in listing.rejections], "extra": extra}))
    mine = slice_chunks(len(members), slice_index, slice_count)
    pending = []
    for chunk in mine:
        stale = [*output.glob(shard_name(chunk) + ".*.tmp"), *(output / PARTS).glob(chunk_part_name(chunk) + ".*.tmp")]
        for path in stale:  # left by a killed run
            path.unlink(missing_ok=True)
        if not (output / PARTS / chunk_part_name(chunk)).exists():
            pending.append(ChunkTask(chunk, len(members), listing.take(members[chunk]), recipe, str(output)))
    done_inputs = sum(len(members[c]) for c in mine) - sum(len(t.items) for t in pending)
    log.info("%s: %d records in %d chunks; slice %d/%d has %d chunks, %d to do", recipe.source, len(listing),
             len(members), slice_index, slice_count, len(mine), len(pending))
    bar = tqdm(total=done_inputs + sum(len(t.items) for t in pending), initial=done_inputs, unit="rec",
               desc=f"{recipe.source} slice {slice_index}/{slice_count}", disable=not progress, smoothing=0.1)
    if workers <= 1 or len(pending) <= 1:
        for task in pending:
            bar.update(process_chunk(task)["inputs"])
    else:
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for part in pool.map(process_chunk, pending):
                bar.update(part["inputs"])
    bar.close()
    return merge(output) if slice_count == 1 else None


def merge(output: Path) -> Manifest:
    """Join the part files of every slice into rejected.jsonl and manifest.json."""
    listing_path = output / PARTS / LISTING_PART
    if not listing_path.exists():
        raise SourceError(f"{output} has no {PARTS}/{LISTING_PART}: slice 0 has not run")
    listing = json.loads(listing_path.read_text())
    total = listing["total_chunks"]
    parts, missing = [], []
    for chunk in range(total):
        path = output / PARTS / chunk_part_name(chunk)
        (parts.append(json.loads(path.read_text())) if path.exists() else missing.append(chunk))
    if missing:
        raise ChunksUnfinished(f"{len(missing)} of {total} chunks are unfinished (first: {missing[:5]}); "
                          "rerun the slices that own them")
    recipe = Recipe.from_dict(json.loads((output / RECIPE_FILE).read_text()))
    labels: Counter = Counter()
    rejected = list(listing["rejected"])
    for part in parts:
        labels.update(part["labels"])
        rejected.extend(part["rejected"])
    atomic_write_text(output / REJECTED_NAME, "".join(json.dumps(r) + "\n" for r in rejected))
    manifest = Manifest(recipe, [ShardEntry(**p["shard"]) for p in parts if p["shard"]], dict(sorted(labels.items())),
                        inputs=listing["inputs"] + sum(p["inputs"] for p in parts),
                        written_inputs=sum(p["written_inputs"] for p in parts), rejected=len(rejected),
                        extra=listing.get("extra", {}), placement_seed=listing.get("placement_seed"))
    assert manifest.inputs == manifest.written_inputs + manifest.rejected, "every input is written or rejected"
    write_index(output, manifest)  # before the manifest: a corpus with a manifest is complete
    write_manifest(output, manifest)
    return manifest
