"""What a source reader hands the pipeline: items to read, raw records, and rejections."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class RecordError(Exception):
    """One input record cannot be used; the message is the reason a person reads."""


class SourceError(Exception):
    """The input as a whole is unusable (no database file, wrong layout): nothing to do."""


@dataclass
class Meta:
    patient_id: str = ""
    age: float = float("nan")
    sex: int = -1  # 0 female, 1 male, -1 unknown
    labels: list[str] = field(default_factory=list)
    fold: int = 0


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
class RawRecord:
    signal: np.ndarray  # (T, C) float64 in mV, NaN where a sample is missing
    fs: float
    leads: list[str]
    meta: Meta | None = None  # set when the signal file carries metadata (WFDB header comments)


@dataclass
class Rejection:
    record_id: str
    path: str
    reason: str

    def to_dict(self) -> dict:
        return {"record_id": self.record_id, "path": self.path, "reason": self.reason}
