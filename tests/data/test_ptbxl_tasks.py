import ast
import csv

import numpy as np
import pytest

from ecgdist.data.ptbxl import TASKS, label_fraction, ptbxl_task, read_statements, task_classes
from ecgdist.data.shards import read_metadata


def test_task_sizes_on_the_complete_statements_file(ptbxl_corpus):
    statements = read_statements(ptbxl_corpus / "scp_statements.csv")
    sizes = {task: len(task_classes(statements, task)) for task in TASKS}
    assert sizes == {"all": 71, "diagnostic": 44, "subdiagnostic": 23, "superdiagnostic": 5, "form": 19, "rhythm": 12}


def expected_counts(shared_data, task):
    """Counts computed straight from the two CSV files, independently of the corpus."""
    statements = read_statements(shared_data / "ptbxl-mini/scp_statements.csv")
    counts, labelled = {}, 0
    with open(shared_data / "ptbxl-mini/ptbxl_database.csv") as f:
        for row in csv.DictReader(f):
            labels = set()
            for code in ast.literal_eval(row["scp_codes"]):
                s = statements[code]
                if task == "superdiagnostic" and s["diagnostic"] == "1.0":
                    labels.add(s["diagnostic_class"])
                elif task == "rhythm" and s["rhythm"] == "1.0":
                    labels.add(code)
            labelled += bool(labels)
            for label in labels:
                counts[label] = counts.get(label, 0) + 1
    return counts, labelled


@pytest.mark.parametrize("task", ["superdiagnostic", "rhythm"])
def test_label_counts_match_the_csv_files(ptbxl_corpus, shared_data, task):
    classes, splits = ptbxl_task(ptbxl_corpus, task)
    counts, labelled = expected_counts(shared_data, task)
    total = sum(np.asarray(s.targets.sum(axis=0)).ravel() for s in splits.values())
    assert {c: int(n) for c, n in zip(classes, total) if n} == counts
    assert sum(len(s.indices) for s in splits.values()) == labelled  # unlabelled records left out


def test_superdiagnostic_counts_on_ptbxl_mini(ptbxl_corpus):
    classes, splits = ptbxl_task(ptbxl_corpus, "superdiagnostic")
    total = sum(np.asarray(s.targets.sum(axis=0)).ravel() for s in splits.values())
    assert dict(zip(classes, total.astype(int).tolist())) == {"CD": 10, "HYP": 3, "MI": 5, "NORM": 85, "STTC": 8}
    assert sum(len(s.indices) for s in splits.values()) == 105


def test_folds_select_train_validation_and_test(ptbxl_corpus):
    _, splits = ptbxl_task(ptbxl_corpus, "all")
    folds = read_metadata(ptbxl_corpus, ["fold"])["fold"]
    assert set(folds[splits["train"].indices]) == set(range(1, 9))
    assert set(folds[splits["val"].indices]) == {9} and set(folds[splits["test"].indices]) == {10}
    assert (len(splits["val"].indices), len(splits["test"].indices)) == (21, 14)


def test_label_fractions_are_seeded_and_nested():
    ten, twenty = label_fraction(1000, 0.1, seed=3), label_fraction(1000, 0.2, seed=3)
    assert len(ten) == 100 and len(twenty) == 200
    assert set(ten) <= set(twenty)
    assert np.array_equal(ten, label_fraction(1000, 0.1, seed=3))
    assert not np.array_equal(ten, label_fraction(1000, 0.1, seed=4))


def test_train_fraction_only_shrinks_the_training_folds(ptbxl_corpus):
    _, full = ptbxl_task(ptbxl_corpus, "all")
    _, part = ptbxl_task(ptbxl_corpus, "all", train_fraction=0.2, seed=1)
    assert set(part["train"].indices) < set(full["train"].indices)
    assert np.array_equal(part["test"].indices, full["test"].indices)
