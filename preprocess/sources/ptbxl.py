"""PTB-XL in its PhysioNet layout: ptbxl_database.csv, scp_statements.csv, records100/, records500/.

Labels are the ``scp_codes`` keys (any likelihood counts); a code missing from
scp_statements.csv marks the row as mislabelled. The file at the requested rate is read
when present, otherwise the other rate (the pipeline resamples and records it; the
corpus's ``source_path`` names the file read). The fingerprint is always taken from the
500 Hz file when it exists, whatever the rate read: the PhysioNet/CinC Challenges
redistribute those files, so a 100 Hz corpus still matches a Challenge corpus by content.
Where only the 100 Hz file exists, it is fingerprinted instead; such a record cannot
match its 500 Hz copy elsewhere by content.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from ecgdist.data.fingerprint import content_fingerprint
from ecgdist.data.wfdb_io import read_wfdb
from preprocess.record import Meta, RawRecord, RecordError, SourceError, SourceItem
from preprocess.sources.csv_rows import optional_float, read_index

CORPUS_FILES = ("scp_statements.csv",)  # copied into the corpus: the PTB-XL tasks need it
REQUIRED = ["ecg_id", "patient_id", "age", "sex", "scp_codes", "strat_fold", "filename_lr", "filename_hr"]


def statement_codes(input_dir: Path) -> set[str]:
    path = input_dir / "scp_statements.csv"
    if not path.exists():
        raise SourceError(f"{path} not found: is this a PTB-XL folder?")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return {row[0] for row in rows[1:] if row}


def list_items(input_dir: Path, rate_hz: int):
    known = statement_codes(input_dir)
    prefer_high = rate_hz > 100

    def make_item(row: dict) -> SourceItem:
        ecg_id = int(row["ecg_id"])
        codes = ast.literal_eval(row["scp_codes"])
        if not isinstance(codes, dict):
            raise ValueError(f"scp_codes is not a dict: {row['scp_codes'][:40]!r}")
        unknown = sorted(set(codes) - known)
        if unknown:
            raise ValueError(f"SCP codes not in scp_statements.csv: {', '.join(unknown)}")
        fold = int(float(row["strat_fold"]))
        if not 1 <= fold <= 10:
            raise ValueError(f"strat_fold {fold} outside 1-10")
        files = [row["filename_hr"], row["filename_lr"]] if prefer_high else [row["filename_lr"], row["filename_hr"]]
        sex = {"0": 1, "1": 0}.get(row["sex"].strip().split(".")[0], -1)  # PTB-XL: 0 male, 1 female
        patient = row["patient_id"].strip()
        meta = Meta(patient_id=str(int(float(patient))) if patient else "", age=optional_float(row["age"]),
                    sex=sex, labels=sorted(codes), fold=fold)
        return SourceItem(str(ecg_id), str(input_dir / files[0]),
                          {"candidates": [str(input_dir / name) for name in files if name],
                           "fingerprint_from": str(input_dir / row["filename_hr"]) if row["filename_hr"] else ""}, meta)

    return read_index(input_dir / "ptbxl_database.csv", REQUIRED, "ptbxl", "ecg_id", make_item)


def read_item(item: SourceItem) -> RawRecord:
    for candidate in item.location["candidates"]:
        if Path(f"{candidate}.hea").exists():
            raw = read_wfdb(candidate)
            raw.meta = None  # labels, fold and demographics come from ptbxl_database.csv
            raw.path = candidate
            high = item.location.get("fingerprint_from", "")
            if high and high != candidate and Path(f"{high}.hea").exists():
                raw.fingerprint = content_fingerprint(read_wfdb(high))
            return raw
    raise RecordError("missing signal files: " + " and ".join(f"{c}.hea" for c in item.location["candidates"]))
