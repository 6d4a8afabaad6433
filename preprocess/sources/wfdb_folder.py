"""Any folder of WFDB records, searched recursively (also PhysioNet/CinC 2020-2021: .hea + .mat).

Age, sex and SNOMED-CT ``Dx`` codes come from the header comments when present, or from a
labels table (``--labels``, preprocess/labels_table.py), which then replaces them.
"""

from __future__ import annotations

from pathlib import Path

from ecgdist.data.wfdb_io import read_wfdb
from preprocess.record import RawRecord, SourceError, SourceItem


def list_items(input_dir: Path, rate_hz: int):
    if not input_dir.is_dir():
        raise SourceError(f"{input_dir} is not a folder")
    headers = sorted(input_dir.rglob("*.hea"))
    if not headers:
        raise SourceError(f"no WFDB headers (*.hea) under {input_dir}")
    items = [SourceItem(str(h.relative_to(input_dir).with_suffix("")), str(h), {"record": str(h.with_suffix(""))})
             for h in headers]
    return items, []


def read_item(item: SourceItem) -> RawRecord:
    raw = read_wfdb(item.location["record"])
    if item.location.get("labels_table"):  # the table's meta data, not the header comments
        raw.meta = None
    return raw
