"""The six PTB-XL benchmark tasks and the official folds (Strodthoff et al. protocol).

Labels come from each record's ``scp_codes`` keys (any likelihood counts) joined with
scp_statements.csv: all statements (71), diagnostic (44), diagnostic subclasses (23),
diagnostic superclasses (5), form (19), rhythm (12). A record with no label in a task
is left out of that task. Folds 1-8 train, 9 validates (model selection), 10 tests.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from ecgdist.data.label_fractions import nested_subsets
from ecgdist.data.labels import multi_hot
from ecgdist.data.shards import read_metadata

TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
SPLIT_FOLDS = {"train": range(1, 9), "val": (9,), "test": (10,)}
STATEMENTS_FILE = "scp_statements.csv"


def read_statements(path: str | Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        header[0] = "code"  # the code column has no name in the original file
        return {row[0]: dict(zip(header, row)) for row in reader if row}


def _flag(value: str) -> bool:
    return value.strip() not in ("", "0", "0.0", "nan")


def task_mapping(statements: dict[str, dict], task: str) -> dict[str, list[str]]:
    """Each SCP code -> the task labels it gives (none when it does not belong to the task)."""
    if task not in TASKS:
        raise ValueError(f"unknown PTB-XL task {task!r}; tasks: {', '.join(TASKS)}")
    column = {"subdiagnostic": "diagnostic_subclass", "superdiagnostic": "diagnostic_class"}.get(task)
    mapping = {}
    for code, row in statements.items():
        if task == "all":
            mapping[code] = [code]
        elif task in ("diagnostic", "form", "rhythm"):
            mapping[code] = [code] if _flag(row[task]) else []
        else:
            mapping[code] = [row[column]] if _flag(row["diagnostic"]) and row[column].strip() else []
    return mapping


def task_classes(statements: dict[str, dict], task: str) -> list[str]:
    return sorted({label for labels in task_mapping(statements, task).values() for label in labels})


@dataclass
class TaskSplit:
    indices: np.ndarray  # global record indices in the corpus
    targets: sparse.csr_matrix  # (n, K)
    record_ids: np.ndarray  # the corpus's record ids of those rows

    def classes_without_positive(self, classes: list[str]) -> list[str]:
        return [c for c, count in zip(classes, np.asarray(self.targets.sum(axis=0)).ravel()) if count == 0]


def ptbxl_task(corpus: str | Path, task: str,
               statements_path: str | Path | None = None) -> tuple[list[str], dict[str, TaskSplit]]:
    """Classes and train/val/test splits of a PTB-XL corpus for one task (every labelled record of
    the folds; ``training_subset`` draws a label fraction of the training split)."""
    statements = read_statements(statements_path or Path(corpus) / STATEMENTS_FILE)
    classes = task_classes(statements, task)
    mapping = task_mapping(statements, task)
    table = read_metadata(corpus, ["record_id", "labels", "fold"])
    targets = multi_hot(table["labels"], classes, lambda code: mapping.get(code, ()))
    labelled = np.asarray(targets.sum(axis=1)).ravel() > 0
    splits = {}
    for name, folds in SPLIT_FOLDS.items():
        rows = np.flatnonzero(labelled & np.isin(table["fold"], list(folds)))
        splits[name] = TaskSplit(rows, targets[rows], table["record_id"][rows])
    return classes, splits


def training_subset(train: TaskSplit, fraction: float, seed: int, records: list[str] | None = None) -> TaskSplit:
    """A label fraction of the training split: its stratified nested subset (data/label_fractions.py),
    or, when given, exactly ``records`` (the record ids a sweep wrote down for it)."""
    if records is not None:
        keep = np.flatnonzero(np.isin(train.record_ids, records))
        if len(keep) != len(set(records)):
            raise ValueError(f"{len(set(records)) - len(keep)} of the recorded training records are not "
                             "training records of this task in this corpus")
    elif fraction < 1.0:
        keep = nested_subsets(train.targets, [fraction], seed)[fraction]
    else:
        return train
    return TaskSplit(train.indices[keep], train.targets[keep], train.record_ids[keep])
