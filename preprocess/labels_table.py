"""A labels table for any WFDB folder, so a hospital export (HEEDB-like) becomes a labelled corpus.

    record,labels,age,sex,patient_id
    2019/p0001/ecg17,426783006;164889003,71,F,p0001

``record`` is the record's path under the input folder without extension, or its bare name
where that names one record; ``labels`` holds codes separated by ``;`` (any code system: a
SNOMED-CT code here is the same label as in PhysioNet 2021). ``age``, ``sex`` (M/F, male/
female, 1/0) and ``patient_id`` are optional. The table is the truth for a record's meta
data: header comments are not read. Nothing is guessed: a row naming no record, a bare name
matching several records, a second row for one record, a malformed row, and a record
without a row are each reported as a rejection with the reason.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from preprocess.record import Meta, Rejection, SourceItem
from preprocess.sources.csv_rows import optional_float, read_index

log = logging.getLogger(__name__)
REQUIRED = ["record", "labels"]
SEXES = {"m": 1, "male": 1, "1": 1, "f": 0, "female": 0, "0": 0, "": -1}


def parse_row(row: dict, table: Path) -> SourceItem:
    """A table row as an item keyed by the record it names (matched to the folder below)."""
    sex = (row.get("sex") or "").strip().lower()
    if sex not in SEXES:
        raise ValueError(f"sex {row['sex']!r} is not one of M, F, male, female, 1, 0 or empty")
    meta = Meta(patient_id=(row.get("patient_id") or "").strip(), age=optional_float((row.get("age") or "").strip()),
                sex=SEXES[sex], labels=[code.strip() for code in row["labels"].split(";") if code.strip()])
    return SourceItem(row["record"].strip().removesuffix(".hea"), str(table), {}, meta)


def attach_labels(items: list[SourceItem], table: Path, source: str) -> tuple[list[SourceItem], list[Rejection]]:
    """The folder's items that have a row, carrying the row's meta data, and the rejections."""
    rows, rejected = read_index(table, REQUIRED, source, "record", lambda row: parse_row(row, table))
    empty = sum(not row.meta.labels for row in rows)
    if empty:
        log.warning("labels table %s: %d of %d rows have no label codes; those records are negatives for every code",
                    table, empty, len(rows))
    by_path = {item.key: item for item in items}
    by_name = defaultdict(list)
    for item in items:
        by_name[Path(item.key).name].append(item)
    labelled: dict[str, Meta] = {}
    for row in rows:
        matches = [by_path[row.key]] if row.key in by_path else by_name.get(row.key, [])
        problem = None
        if not matches:
            problem = f"the labels table names {row.key!r}, but the input folder has no such record"
        elif len(matches) > 1:
            problem = (f"the labels table names {row.key!r}, which matches {len(matches)} records "
                       f"({', '.join(m.key for m in matches[:3])}); give its path under the input folder")
        elif matches[0].key in labelled:
            problem = f"the labels table has a second row for {matches[0].key!r}"
        if problem:
            rejected.append(Rejection(f"{source}:{row.key}", str(table), problem))
        else:
            labelled[matches[0].key] = row.meta
    kept = []
    for item in items:
        if item.key in labelled:
            kept.append(replace(item, meta=labelled[item.key], location={**item.location, "labels_table": True}))
        else:
            rejected.append(Rejection(f"{source}:{item.key}", item.path, f"no row in the labels table {table}"))
    return kept, rejected
