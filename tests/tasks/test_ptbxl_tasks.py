import ast
import csv

import numpy as np
import pytest

from ecgdist.data.label_fractions import nested_subsets
from ecgdist.tasks.benchmark import task_splits, training_subset
from ecgdist.tasks.ptbxl import TASKS, read_statements, task_classes
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
    made = task_splits(ptbxl_corpus, "ptbxl", task)
    classes, splits = made.classes, made.splits
    counts, labelled = expected_counts(shared_data, task)
    total = sum(np.asarray(s.targets.sum(axis=0)).ravel() for s in splits.values())
    assert {c: int(n) for c, n in zip(classes, total) if n} == counts
    assert sum(len(s.indices) for s in splits.values()) == labelled  # unlabelled records left out


def test_superdiagnostic_counts_on_ptbxl_mini(ptbxl_corpus):
    task = task_splits(ptbxl_corpus, "ptbxl", "superdiagnostic")
    classes, splits = task.classes, task.splits
    total = sum(np.asarray(s.targets.sum(axis=0)).ravel() for s in splits.values())
    assert dict(zip(classes, total.astype(int).tolist())) == {"CD": 10, "HYP": 3, "MI": 5, "NORM": 85, "STTC": 8}
    assert sum(len(s.indices) for s in splits.values()) == 105


def test_folds_select_train_validation_and_test(ptbxl_corpus):
    splits = task_splits(ptbxl_corpus, "ptbxl", "all").splits
    folds = read_metadata(ptbxl_corpus, ["fold"])["fold"]
    assert set(folds[splits["train"].indices]) == set(range(1, 9))
    assert set(folds[splits["val"].indices]) == {9} and set(folds[splits["test"].indices]) == {10}
    assert (len(splits["val"].indices), len(splits["test"].indices)) == (21, 14)


def test_label_fractions_are_stratified_nested_seeded_and_keep_every_class_they_can():
    """A constructed label matrix: 2,000 records, 10 classes from common to a handful of positives."""
    rng = np.random.default_rng(0)
    prevalence = np.array([0.5, 0.3, 0.1, 0.05, 0.02, 0.011, 0.006, 0.003, 0.0015, 0.001])
    targets = rng.random((2000, 10)) < prevalence
    counts = targets.sum(axis=0)
    fractions = [0.01, 0.05, 0.1, 0.5]
    subsets = nested_subsets(targets, fractions + [1.0], seed=3)
    assert sorted(subsets) == fractions  # fraction 1 is the whole training split
    for small, large in zip(fractions, fractions[1:]):
        assert set(subsets[small]) <= set(subsets[large])
    for fraction, rows in subsets.items():
        kept = targets[rows].sum(axis=0)
        assert (kept[counts >= 1 / fraction] > 0).all(), (fraction, kept, counts)
        assert round(fraction * 2000) <= len(rows) <= round(fraction * 2000) + 10
        share = kept[:3] / counts[:3]  # common classes keep their share (stratified), within 1/3
        assert np.all(np.abs(share - fraction) <= max(fraction / 3, 2 / counts[:3].min())), (fraction, share)
    # The same subset whichever other fractions run beside it; another seed, another subset.
    assert np.array_equal(nested_subsets(targets, [0.1], seed=3)[0.1], subsets[0.1])
    assert not np.array_equal(nested_subsets(targets, [0.1], seed=4)[0.1], subsets[0.1])


def test_train_fraction_only_shrinks_the_training_folds(ptbxl_corpus):
    full = task_splits(ptbxl_corpus, "ptbxl", "all").splits
    part = training_subset(full["train"], 0.2, seed=1)
    assert set(part.indices) < set(full["train"].indices)
    assert all(full["train"].record_ids[np.searchsorted(full["train"].indices, i)] == r
               for i, r in zip(part.indices, part.record_ids))  # rows, targets and ids stay together
    recorded = training_subset(full["train"], 0.2, seed=9, records=part.record_ids.tolist())
    assert np.array_equal(recorded.indices, part.indices)  # a sweep's record gives back the same subset
    with pytest.raises(ValueError, match="1 of the recorded training records are not training records"):
        training_subset(full["train"], 0.2, seed=1, records=[*part.record_ids.tolist(), "ptbxl:99999#0"])
