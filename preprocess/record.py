"""What a source reader hands the pipeline: items to read, and rejections."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecgdist.data.records import Meta, RawRecord, RecordError  # noqa: F401  (the readers' vocabulary)


class SourceError(Exception):
    """The input as a whole is unusable (no database file, wrong layout): nothing to do."""


@dataclass
class SourceItem:
    """A record to read, small enough to send to a worker process.

    ``key`` is the source's own id (unique in the source); ``location`` is what the
    reader needs to find the signal (a WFDB path without extension, a file + row, ...).
    """

    key: str
    path: str
    location: dict
    meta: Meta = field(default_factory=Meta)


@dataclass
class Rejection:
    record_id: str
    path: str
    reason: str

    def to_dict(self) -> dict:
        return {"record_id": self.record_id, "path": self.path, "reason": self.reason}
