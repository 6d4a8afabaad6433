"""MIMIC-IV-ECG in its published layout: record_list.csv + files/pNNNN/pSUBJECT/sSTUDY/STUDY.{hea,dat}.

Labels are the machine-generated report statements (``report_0`` .. ``report_17`` of
machine_measurements.csv) when that file is present; age and sex live in MIMIC-IV's
hospital tables, not here, so they stay unknown.
"""

from __future__ import annotations

from pathlib import Path

from ecgdist.data.wfdb_io import read_wfdb
from preprocess.record import Meta, RawRecord, SourceItem
from preprocess.sources.csv_rows import read_index, rows_by

REQUIRED = ["subject_id", "study_id", "path"]


def machine_statements(input_dir: Path) -> dict[str, list[str]]:
    path = input_dir / "machine_measurements.csv"
    if not path.exists():
        return {}
    return {study: sorted({v.strip() for k, v in row.items() if k and k.startswith("report_") and v and v.strip()})
            for study, row in rows_by(path, "study_id")}


def list_items(input_dir: Path, rate_hz: int):
    statements = machine_statements(input_dir)

    def make_item(row: dict) -> SourceItem:
        study = str(int(row["study_id"]))
        record = input_dir / row["path"].strip()
        meta = Meta(patient_id=str(int(row["subject_id"])), labels=statements.get(study, []))
        return SourceItem(study, f"{record}.hea", {"record": str(record)}, meta)

    return read_index(input_dir / "record_list.csv", REQUIRED, "mimic-iv-ecg", "study_id", make_item)


def read_item(item: SourceItem) -> RawRecord:
    raw = read_wfdb(item.location["record"])
    raw.meta = None  # metadata comes from the CSV files, not the header comments
    return raw
