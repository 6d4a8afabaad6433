"""CODE-test (Ribeiro et al. 2020, Zenodo 3765780): 827 exams of 827 patients, annotated by
cardiologists; the usual external test set of models trained on CODE-15 %.

Layout: ``ecg_tracings.hdf5`` (one dataset, ``tracings``: exams x 4096 samples x 12 leads,
400 Hz, zero-padded on both sides as CODE-15 %), ``attributes.csv`` (age, sex M/F) and
``annotations/gold_standard.csv`` (columns 1dAVb, RBBB, LBBB, SB, AF, ST: 1 where the
abnormality is present), row i of each file the i-th tracing. The exams carry no ids:
record i (from 1) is ``code-test:i``, its own patient. Its labels are the gold standard's.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import h5py

from preprocess.record import Meta, RawRecord, RecordError, SourceError, SourceItem
from preprocess.sources.code15 import parse_bool, unpadded
from preprocess.sources.csv_rows import optional_float, read_index, rows_of

LABELS = ["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]
TRACINGS = "ecg_tracings.hdf5"
GOLD_STANDARD = "annotations/gold_standard.csv"


def list_items(input_dir: Path, rate_hz: int):
    tracings = input_dir / TRACINGS
    if not tracings.exists():
        raise SourceError(f"{tracings} not found: is this a CODE-test folder?")
    with h5py.File(tracings, "r") as f:
        count = len(f["tracings"])
    people = dict(rows_by_position(input_dir / "attributes.csv"))

    def make_item(row: dict, position: int) -> SourceItem:
        if position > count:
            raise ValueError(f"no tracing for it ({TRACINGS} holds {count})")
        person = people.get(position, {})
        key = str(position)
        meta = Meta(patient_id=key, age=optional_float(person.get("age")),
                    sex={"M": 1, "F": 0}.get((person.get("sex") or "").strip().upper(), -1),
                    labels=[name for name in LABELS if parse_bool(row[name])])
        return SourceItem(key, str(tracings), {"file": str(tracings), "row": position - 1}, meta)

    return read_index(input_dir / GOLD_STANDARD, LABELS, "code-test", "", make_item, by_position=True)


def rows_by_position(path: Path):
    """(position from 1, row) of attributes.csv, where present (age and sex are optional)."""
    if path.exists():
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            yield from enumerate(rows_of(csv.DictReader(f, strict=True), path), start=1)


@lru_cache(maxsize=2)
def _open(path: str) -> h5py.File:
    """One open handle per worker process."""
    return h5py.File(path, "r")


def read_item(item: SourceItem) -> RawRecord:
    tracings = _open(item.location["file"])["tracings"]
    if item.location["row"] >= len(tracings):
        raise RecordError(f"row {item.location['row']} is past the {len(tracings)} tracings")
    return unpadded(tracings[item.location["row"]])
