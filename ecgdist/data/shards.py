"""The shard corpus format: the one contract between ``preprocess`` (writer) and ``ecgdist.data`` (readers).

A corpus is a directory::

    manifest.json        recipe, label vocabulary, shards with record counts and sha256
    rejected.jsonl       one line per rejected input record: id, source path, reason
    shard-000000.h5 ...  many records per file

Each shard holds ``signals`` (N, 12, L), stored contiguous and uncompressed so a batch is
one large read and the block can be memory-mapped at its file offset, plus one metadata
column per field in ``METADATA``. Samples are in mV, in the lead order of
``STANDARD_LEADS``, at the recipe's rate; normalisation happens at load time.

Every file is written to a temporary name and renamed, so a reader never sees half a
shard or half a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from ecgdist import __version__
from ecgdist.data.fingerprint import FINGERPRINT_VERSION
from ecgdist.files import atomic_write_text, file_sha256, temp_path_for
from ecgdist.leads import STANDARD_LEADS

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
REJECTED_NAME = "rejected.jsonl"
SIGNALS = "signals"
LABEL_SEPARATOR = ";"

# Quality flags, one bit each.
FLAG_NAN = 1  # some samples were missing (NaN) and were interpolated
FLAG_FLAT_LEAD = 2  # at least one lead is constant over the window
FLAG_PADDED = 4  # the record was shorter than a window and was zero-padded
FLAG_RESAMPLED = 8  # the stored rate differs from the source's rate

STRING = h5py.string_dtype("utf-8")
# Per-record metadata columns and their storage types.
METADATA: dict[str, Any] = {
    "record_id": STRING,  # source + original id + window, stable across runs
    "patient_id": STRING,  # "" when unknown
    "labels": STRING,  # the source's own label codes, joined by LABEL_SEPARATOR
    "source_path": STRING,
    "age": np.float32,  # NaN when unknown
    "sex": np.int8,  # 0 female, 1 male, -1 unknown
    "fold": np.int8,  # the source's fold (PTB-XL strat_fold), 0 when none
    "window": np.int16,  # index of this window within its record
    "flags": np.uint8,
    "source_fs": np.float32,
    "fingerprint": np.uint64,  # of the source record's samples (ecgdist.data.fingerprint)
}


INPUT_FIELDS = ("rate_hz", "seconds", "filter")  # the Recipe fields a model's input depends on


@dataclass(frozen=True)
class Recipe:
    """How a corpus was made; a training job can refuse a corpus made differently."""

    source: str
    rate_hz: int = 500
    seconds: float = 10.0
    filter: str = "none"
    dtype: str = "float16"
    leads: tuple[str, ...] = STANDARD_LEADS
    format_version: int = FORMAT_VERSION
    code_version: str = __version__

    @property
    def samples(self) -> int:
        return int(round(self.rate_hz * self.seconds))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["leads"] = list(self.leads)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        return cls(**{**d, "leads": tuple(d["leads"])})


@dataclass
class ShardEntry:
    file: str
    records: int
    sha256: str
    bytes: int


@dataclass
class Manifest:
    recipe: Recipe
    shards: list[ShardEntry]
    labels: dict[str, int]  # label code -> windows carrying it
    inputs: int  # input records seen
    written_inputs: int  # input records that gave at least one window
    rejected: int
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    placement_seed: int | None = None  # records were placed in shards by this seed; None: in input order

    @property
    def records(self) -> int:
        return sum(s.records for s in self.shards)

    def to_dict(self) -> dict:
        return {"format_version": self.format_version, "recipe": self.recipe.to_dict(), "records": self.records,
                "inputs": self.inputs, "written_inputs": self.written_inputs, "rejected": self.rejected,
                "labels": self.labels, "shards": [asdict(s) for s in self.shards], "extra": self.extra,
                "placement_seed": self.placement_seed}

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"corpus format {d.get('format_version')} is not {FORMAT_VERSION}; re-run preprocess")
        return cls(Recipe.from_dict(d["recipe"]), [ShardEntry(**s) for s in d["shards"]], d["labels"],
                   d["inputs"], d["written_inputs"], d["rejected"], d["format_version"], d.get("extra", {}),
                   d.get("placement_seed"))


def write_shard(path: Path, signals: np.ndarray, metadata: dict[str, list], recipe: Recipe) -> ShardEntry:
    """Write one shard atomically; ``metadata`` has one list per ``METADATA`` column."""
    if set(metadata) != set(METADATA):
        raise ValueError(f"metadata columns {sorted(metadata)} differ from {sorted(METADATA)}")
    tmp = temp_path_for(path)
    try:
        with h5py.File(tmp, "w", libver="v110") as f:
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["recipe"] = json.dumps(recipe.to_dict())
            f.attrs["fingerprint_version"] = FINGERPRINT_VERSION
            f.create_dataset(SIGNALS, data=signals.astype(recipe.dtype, copy=False))  # contiguous: mmap-able
            for name, dtype in METADATA.items():
                f.create_dataset(name, data=np.asarray(metadata[name], dtype=object if dtype is STRING else dtype),
                                 dtype=dtype)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except (OSError, RuntimeError) as error:  # a full disk reaches us from HDF5 as either
        tmp.unlink(missing_ok=True)
        raise OSError(f"cannot write shard {path}: {str(error).splitlines()[0]}") from None
    os.replace(tmp, path)
    return ShardEntry(path.name, len(signals), file_sha256(path), path.stat().st_size)


def write_manifest(corpus: Path, manifest: Manifest) -> None:
    atomic_write_text(corpus / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=1))


def read_manifest(corpus: str | os.PathLike) -> Manifest:
    path = Path(corpus) / MANIFEST_NAME
    if not path.exists():
        raise FileNotFoundError(f"{corpus} is not a shard corpus (no {MANIFEST_NAME}); run python -m preprocess")
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a valid manifest ({type(error).__name__}: {error}); re-run "
                         "python -m preprocess merge on the corpus") from None


def read_rejected(corpus: str | os.PathLike) -> list[dict]:
    path = Path(corpus) / REJECTED_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


class CorruptShard(ValueError):
    """A shard is missing, truncated or modified since the manifest was written; names its path."""


def corrupt_shard(path: Path, problem: str) -> CorruptShard:
    return CorruptShard(f"shard {path} {problem}; check the corpus with: python -m preprocess verify {path.parent}")


def shard_problem(path: Path, entry: ShardEntry, content: bool = True) -> str | None:
    """Why the shard at ``path`` does not match its manifest entry (size, then sha256), or None."""
    if not path.exists():
        return "missing"
    size = path.stat().st_size
    if size != entry.bytes:
        return f"{'truncated' if size < entry.bytes else 'grown'}: {size} bytes, the manifest says {entry.bytes}"
    if content and file_sha256(path) != entry.sha256:
        return "modified: its sha256 differs from the manifest's"
    return None


def count_problem(rows: int, entry: ShardEntry) -> str | None:
    """A manifest whose record count disagrees with the shard would pair every later row with
    another record's labels and fingerprint."""
    return None if rows == entry.records else f"holds {rows} records, the manifest says {entry.records}"


def shard_rows(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return len(f[SIGNALS])


def verify_shards(corpus: str | os.PathLike, manifest: Manifest | None = None, content: bool = True) -> list[str]:
    """'NAME: reason' for every shard that does not match the manifest (sizes only unless ``content``:
    then also sha256 and record count)."""
    manifest = manifest or read_manifest(corpus)
    problems = ((s.file, shard_problem(Path(corpus) / s.file, s, content)
                 or (count_problem(shard_rows(Path(corpus) / s.file), s) if content else None))
                for s in manifest.shards)
    return [f"{name}: {problem}" for name, problem in problems if problem]


def verified_marker(path: Path, entry: ShardEntry, cache: Path) -> Path:
    """The per-node marker saying ``path`` (as it is now) was found to match ``entry`` in full."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{entry.sha256}".encode())
    return cache / key.hexdigest()


def remember_verified(path: Path, entry: ShardEntry, cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    verified_marker(path, entry, cache).touch()


def verified_once(path: Path, entry: ShardEntry, cache: Path) -> None:
    """Raise ``CorruptShard`` unless ``path`` matches ``entry``; a full check is remembered per node
    (a marker keyed by path, size, mtime and sha256 under ``cache``), so each shard is hashed once
    per machine rather than once per loader process."""
    problem = shard_problem(path, entry, content=False)
    if problem is None:
        if verified_marker(path, entry, cache).exists():
            return
        problem = shard_problem(path, entry)
        if problem is None:
            remember_verified(path, entry, cache)
            return
    raise corrupt_shard(path, f"is {problem}")


def read_metadata(corpus: str | os.PathLike, columns: Iterable[str] = tuple(METADATA),
                  manifest: Manifest | None = None) -> dict[str, np.ndarray]:
    """Concatenated metadata columns of every shard, plus ``shard`` and ``row`` locating each record."""
    manifest = manifest or read_manifest(corpus)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in columns}
    shard_ids, rows = [], []
    for index, entry in enumerate(manifest.shards):
        with h5py.File(Path(corpus) / entry.file, "r") as f:
            problem = count_problem(len(f[SIGNALS]), entry)
            if problem:
                raise corrupt_shard(Path(corpus) / entry.file, problem)
            for name in parts:
                column = f[name]
                parts[name].append(column.asstr()[:] if METADATA[name] is STRING else column[:])
        shard_ids.append(np.full(entry.records, index, dtype=np.int32))
        rows.append(np.arange(entry.records, dtype=np.int32))
    table = {name: np.concatenate(chunks) if chunks else np.empty(0) for name, chunks in parts.items()}
    table["shard"] = np.concatenate(shard_ids) if shard_ids else np.empty(0, np.int32)
    table["row"] = np.concatenate(rows) if rows else np.empty(0, np.int32)
    return table


def split_labels(text: str) -> list[str]:
    return [code for code in text.split(LABEL_SEPARATOR) if code]
