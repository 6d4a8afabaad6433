"""A raw ECG record as read from its source, before the recipe (rate, window, filter) is applied.

Shared by the preprocessing stage and by ``ecgdist.predict``, which applies the same
recipe to records it is asked to classify.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class RecordError(Exception):
    """One input record cannot be used; the message is the reason a person reads."""


@dataclass
class Meta:
    patient_id: str = ""
    age: float = float("nan")
    sex: int = -1  # 0 female, 1 male, -1 unknown
    labels: list[str] = field(default_factory=list)
    fold: int = 0


@dataclass
class RawRecord:
    signal: np.ndarray  # (T, C) float64 in mV, NaN where a sample is missing
    fs: float
    leads: list[str]
    meta: Meta | None = None  # from the signal file (WFDB header comments); None: the source's index has it
    path: str = ""  # the file actually read, where a source chooses among several ("": the item's own path)
    fingerprint: int | None = None  # set by a source that fingerprints the ECG from another of its files
