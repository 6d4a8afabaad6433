"""The listing of a source: every record to read, made once and shared by every array task.

Walking a 7 M-record tree (MIMIC-IV-ECG's nested folders, a hospital export on a parallel
file system) takes longer than sharding a slice of it, so ``python -m preprocess list``
walks once and writes a listing file that every ``--slice`` task reads instead (given
``--listing PATH``, the first task to find no listing there makes it while the others wait
on a file lock; ``slurm/preprocess.sh`` passes one). A task
decodes only the lines of its own chunks: the file is memory-mapped and its line starts
found with numpy, so 7 M lines cost a task a few seconds, not a parse of the whole file.

A listing file is JSON lines: a header (source, input folder, rate, record count, the
listing's digest, records rejected while listing), then one line per record. It is
written atomically; a listing made for another source, folder or rate is refused.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import mmap
from pathlib import Path
from typing import Sequence

import numpy as np

from ecgdist.data.records import Meta
from ecgdist.files import atomic_write_text
from preprocess.labels_table import attach_labels
from preprocess.record import Rejection, SourceError, SourceItem
from preprocess.sources import SOURCES

log = logging.getLogger(__name__)


def encode_item(item: SourceItem) -> bytes:
    return json.dumps([item.key, item.path, item.location, dataclasses.asdict(item.meta)]).encode()


def decode_item(line: bytes) -> SourceItem:
    key, path, location, meta = json.loads(line)
    return SourceItem(key, path, location, Meta(**meta))


@dataclasses.dataclass
class Listing:
    """``header`` describes the listing; ``lines`` holds one encoded item per record."""

    header: dict
    lines: Sequence[bytes]

    def __len__(self) -> int:
        return self.header["records"]

    @property
    def rejections(self) -> list[Rejection]:
        return [Rejection(**r) for r in self.header["rejected"]]

    def take(self, positions: np.ndarray) -> list[SourceItem]:
        return [decode_item(self.lines[int(p)]) for p in positions]

    def check(self, source: str, input_dir: Path, rate_hz: int, labels: Path | None = None) -> None:
        """Refuse a listing of another source, folder, rate or labels table than the command names."""
        wanted = {"source": source, "input": str(Path(input_dir).resolve()), "rate_hz": rate_hz,
                  "labels": str(Path(labels).resolve()) if labels else None}
        wrong = [f"{k}: {self.header.get(k)} in the listing, {v} here" for k, v in wanted.items()
                 if self.header.get(k) != v]
        if wrong:
            raise SourceError(f"the listing does not fit this command ({'; '.join(wrong)}); "
                              f"list again with: python -m preprocess list {source} {input_dir} LISTING")


def walk(source: str, input_dir: Path, rate_hz: int, labels: Path | None = None) -> Listing:
    """List a source by reading its index files (or walking its folder); ``labels``: a labels
    table (preprocess/labels_table.py) whose rows give each record its meta data."""
    items, rejections = SOURCES[source].list_items(Path(input_dir), rate_hz)
    if labels is not None:
        items, unmatched = attach_labels(items, Path(labels), source)
        rejections = [*rejections, *unmatched]
    lines = [encode_item(item) for item in items]
    header = {"source": source, "input": str(Path(input_dir).resolve()), "rate_hz": rate_hz,
              "labels": str(Path(labels).resolve()) if labels else None, "records": len(items),
              "sha256": hashlib.sha256(b"\n".join(lines)).hexdigest(), "rejected": [r.to_dict() for r in rejections]}
    return Listing(header, lines)


def write_listing(path: Path, listing: Listing) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(listing.header) + "\n" + "".join(line.decode() + "\n" for line in listing.lines))


class MappedLines(Sequence[bytes]):
    """Line i (after the header) of a memory-mapped listing file, without reading the others."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        ends = np.flatnonzero(np.frombuffer(self.map, dtype=np.uint8) == ord("\n"))
        self.starts, self.ends = ends[:-1] + 1, ends[1:]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> bytes:
        return self.map[self.starts[i]:self.ends[i]]

    def header(self) -> dict:
        return json.loads(self.map[:self.starts[0] - 1] if len(self.starts) else self.map[:].rstrip(b"\n"))


def read_listing(path: Path) -> Listing:
    if not Path(path).is_file():
        raise SourceError(f"no listing at {path}; make it with: python -m preprocess list SOURCE INPUT {path}")
    lines = MappedLines(Path(path))
    try:
        header = lines.header()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SourceError(f"{path} is not a listing ({error}); list again with python -m preprocess list") from None
    if header.get("records") != len(lines):
        raise SourceError(f"{path} holds {len(lines)} records, its header says {header.get('records')}; "
                          "list again with python -m preprocess list")
    return Listing(header, lines)


def shared_listing(path: Path, source: str, input_dir: Path, rate_hz: int, labels: Path | None = None) -> Listing:
    """The listing at ``path``, made there first if missing. Array tasks start together: an
    exclusive lock on ``PATH.lock`` lets one walk the input while the others wait for its file
    (the lock dies with its holder, so a killed task never leaves the others stuck)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            write_listing(path, walk(source, input_dir, rate_hz, labels))
            log.info("listed %s into %s", input_dir, path)
    listing = read_listing(path)
    listing.check(source, input_dir, rate_hz, labels)
    return listing
