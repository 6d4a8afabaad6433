"""A fine-tune task from any labelled shard corpus: its classes, its folds, its three splits.

A task is a benchmark kind and a task name within it:

- ``ptbxl``: the six PTB-XL tasks over SCP statements (tasks/ptbxl.py), official folds;
- ``physionet2021``: one task per source database over the Challenge's scored classes
  (tasks/physionet2021.py); a record with no scored class is a negative for every class;
- ``code15``: CODE-15 %'s six abnormalities (tasks/code15.py), exams with none negatives;
- ``labels``: any corpus's own codes (a hospital's labels table, say), all of them or a
  class list, optionally through a mapping table (CSV ``code,class``: one row per stored code
  and the class it counts for); task name ``all``.

Folds are the corpus's own (PTB-XL) or the ones ``python -m preprocess split`` made, both
read from the corpus index: 1-8 train, 9 validation (model selection), 10 test. Classes of
a task that no record of it holds are left out, and named (``TaskSplits.left_out``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from scipy import sparse

from ecgdist.config import BENCHMARK_KINDS, SPLIT_FOLDS
from ecgdist.data.index import read_index
from ecgdist.data.label_fractions import nested_subsets
from ecgdist.data.shards import read_metadata
from ecgdist.tasks import code15, physionet2021, ptbxl

TASKS = {"ptbxl": ptbxl.TASKS, "physionet2021": physionet2021.SOURCES, "code15": code15.TASKS, "labels": ("all",)}


class NoFolds(ValueError):
    """The corpus has neither folds of its own nor made ones; the message says how to make them."""


@dataclass
class TaskSplit:
    indices: np.ndarray  # global record indices in the corpus
    targets: sparse.csr_matrix  # (n, K)
    record_ids: np.ndarray  # the corpus's record ids of those rows

    def classes_without_positive(self, classes: list[str]) -> list[str]:
        return [c for c, count in zip(classes, np.asarray(self.targets.sum(axis=0)).ravel()) if count == 0]


@dataclass
class TaskSplits:
    classes: list[str]  # the classes scored, in target column order
    splits: dict[str, TaskSplit]  # train, val, test
    left_out: list[str] = field(default_factory=list)  # listed classes none of the task's records holds


@dataclass(frozen=True)
class Definition:
    classes: list[str]
    mapping: Callable[[str], Iterable[str]]  # a stored code -> the task classes it counts for
    member: Callable[[str], bool] = lambda record_id: True  # which records belong to the task
    unlabelled_are_negatives: bool = True  # PTB-XL leaves a record without a class of the task out


def read_mapping_table(path: str | Path) -> dict[str, list[str]]:
    """{stored code: [classes]} from a CSV with columns ``code`` and ``class``."""
    mapping: dict[str, list[str]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"code", "class"} <= set(reader.fieldnames or ()):
            raise ValueError(f"mapping table {path} needs columns code and class (it has {reader.fieldnames})")
        for row in reader:
            mapping.setdefault(row["code"].strip(), []).append(row["class"].strip())
    return mapping


def define(corpus: str | Path, kind: str, task: str, vocabulary: list[str], classes: list[str] | None = None,
           mapping_table: str = "") -> Definition:
    """``vocabulary``: the corpus's own codes (its index's), the classes of kind labels without a list or table."""
    if kind not in BENCHMARK_KINDS:
        raise ValueError(f"unknown benchmark kind {kind!r}; kinds: {', '.join(BENCHMARK_KINDS)}")
    if task not in TASKS[kind]:
        raise ValueError(f"unknown {kind} task {task!r}; tasks: {', '.join(TASKS[kind])}")
    if kind == "ptbxl":
        statements = ptbxl.read_statements(Path(corpus) / ptbxl.STATEMENTS_FILE)
        table = ptbxl.task_mapping(statements, task)
        return Definition(ptbxl.task_classes(statements, task), lambda code: table.get(code, ()),
                          unlabelled_are_negatives=False)
    if kind == "physionet2021":
        return Definition(list(physionet2021.CLASSES), physionet2021.scored_class,
                          lambda record_id: physionet2021.source_of(record_id) == task)
    if kind == "code15":
        return Definition(list(code15.CLASSES), lambda code: (code,))
    table = read_mapping_table(mapping_table) if mapping_table else None
    listed = sorted({c for cs in table.values() for c in cs}) if table else vocabulary
    return Definition(list(classes) if classes else listed,
                      (lambda code: table.get(code, ())) if table else (lambda code: (code,)))


@dataclass
class TaskRecords:
    """Every record of a task in a corpus, before any split: their targets over ``classes``."""

    classes: list[str]
    rows: np.ndarray  # global record indices of the task's records
    targets: sparse.csr_matrix  # (corpus records, K): read at ``rows``
    record_ids: np.ndarray  # of every record of the corpus
    folds: np.ndarray  # of every record of the corpus (0: none)
    held: np.ndarray  # (K,) bool: some record of the task holds the class


def task_records(corpus: str | Path, kind: str, task: str, classes: list[str] | None = None,
                 mapping_table: str = "") -> TaskRecords:
    """The task's records of ``corpus`` and their targets, folds aside (an external test set has none)."""
    index = read_index(corpus)
    definition = define(corpus, kind, task, index.vocabulary, classes, mapping_table)
    record_ids = read_metadata(corpus, ["record_id"])["record_id"]
    member = np.fromiter(map(definition.member, record_ids), dtype=bool, count=len(record_ids))
    column = {c: k for k, c in enumerate(definition.classes)}
    to_class = sparse.lil_matrix((len(index.vocabulary), len(definition.classes)), dtype=np.float32)
    for v, code in enumerate(index.vocabulary):
        for label in definition.mapping(code):
            if label in column:
                to_class[v, column[label]] = 1
    targets = ((index.targets(index.vocabulary) @ to_class.tocsr()) > 0).astype(np.float32).tocsr()
    if not definition.unlabelled_are_negatives:
        member &= np.asarray(targets.sum(axis=1)).ravel() > 0
    held = np.asarray(targets[member].sum(axis=0)).ravel() > 0
    return TaskRecords(list(definition.classes), np.flatnonzero(member), targets, record_ids, index.fold, held)


def task_splits(corpus: str | Path, kind: str, task: str, classes: list[str] | None = None,
                mapping_table: str = "", folds: dict[str, tuple[int, ...]] = SPLIT_FOLDS) -> TaskSplits:
    """The task's classes and its train / val / test records of ``corpus`` (folds from its index);
    ``folds``: other splits (a probe's train and score folds), by name."""
    records = task_records(corpus, kind, task, classes, mapping_table)
    if not records.folds.any():
        raise NoFolds(f"{corpus} has no folds: make them once, before pre-training on it, with "
                      f"python -m preprocess split {corpus} --seed 0")
    prune = kind in ("physionet2021", "labels")  # a list made for many sources: score what this task's records hold
    kept = np.flatnonzero(records.held) if prune else np.arange(len(records.classes))
    targets = records.targets[:, kept].tocsr()
    member = np.zeros(len(records.folds), dtype=bool)
    member[records.rows] = True
    splits = {}
    for name, chosen in folds.items():
        rows = np.flatnonzero(member & np.isin(records.folds, chosen))
        splits[name] = TaskSplit(rows, targets[rows], records.record_ids[rows])
    return TaskSplits([records.classes[k] for k in kept], splits,
                      [c for c, h in zip(records.classes, records.held) if not h] if prune else [])


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
