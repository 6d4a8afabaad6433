"""CODE-15% in its original layout: exams.csv + exams_part*.hdf5 (``tracings``, ``exam_id``).

Tracings are 4096 samples at 400 Hz, zero-padded symmetrically around shorter
recordings; the padding is stripped before windowing so a 7.3 s exam is flagged as
padded instead of passing as 10 s. The dummy all-zero row (exam_id 0) is not in
exams.csv and so is never an input.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np

from preprocess.record import Meta, RawRecord, RecordError, SourceItem
from preprocess.sources.csv_rows import optional_float, read_index

LEADS = ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
LABELS = ["1dAVb", "RBBB", "LBBB", "SB", "ST", "AF", "normal_ecg"]
REQUIRED = ["exam_id", "age", "is_male", "patient_id", "trace_file", *LABELS]
FS_HZ = 400.0


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "1.0", "0.0"):
        raise ValueError(f"{text!r} is not a boolean")
    return value in ("true", "1", "1.0")


def list_items(input_dir: Path, rate_hz: int):
    def make_item(row: dict) -> SourceItem:
        exam = int(row["exam_id"])
        meta = Meta(patient_id=str(int(float(row["patient_id"]))) if row["patient_id"].strip() else "",
                    age=optional_float(row["age"]), sex=1 if parse_bool(row["is_male"]) else 0,
                    labels=[name for name in LABELS if parse_bool(row[name])])
        trace = input_dir / row["trace_file"].strip()
        return SourceItem(str(exam), str(trace), {"file": str(trace), "exam_id": exam}, meta)

    return read_index(input_dir / "exams.csv", REQUIRED, "code15", "exam_id", make_item)


@lru_cache(maxsize=4)
def _open_part(path: str) -> tuple[h5py.File, dict[int, int]]:
    """One open handle and exam_id -> row map per part file and worker process."""
    f = h5py.File(path, "r")
    return f, {int(exam): row for row, exam in enumerate(f["exam_id"][:])}


def read_item(item: SourceItem) -> RawRecord:
    path = item.location["file"]
    if not Path(path).exists():
        raise RecordError(f"missing trace file {Path(path).name}")
    f, rows = _open_part(path)
    row = rows.get(item.location["exam_id"])
    if row is None:
        raise RecordError(f"exam_id {item.location['exam_id']} not found in {Path(path).name}")
    return unpadded(f["tracings"][row])


def unpadded(tracing: np.ndarray) -> RawRecord:
    """A (4096, 12) tracing without the zero padding around a shorter recording (CODE-test's too)."""
    tracing = np.asarray(tracing, dtype=np.float64)
    active = np.flatnonzero(np.any(tracing != 0, axis=1))
    if active.size == 0:
        raise RecordError("tracing is all zeros")
    return RawRecord(tracing[active[0]: active[-1] + 1], FS_HZ, list(LEADS))
