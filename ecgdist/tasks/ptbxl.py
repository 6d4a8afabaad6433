"""The six PTB-XL benchmark tasks (Strodthoff et al. protocol).

Labels come from each record's ``scp_codes`` keys (any likelihood counts) joined with
scp_statements.csv: all statements (71), diagnostic (44), diagnostic subclasses (23),
diagnostic superclasses (5), form (19), rhythm (12). A record with no label in a task
is left out of that task (tasks/benchmark.py). The official folds: 1-8 train, 9 validates
(model selection), 10 tests.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ecgdist.config import PTBXL_TASKS as TASKS
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
