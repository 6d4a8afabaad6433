"""Benchmarks beyond PTB-XL: folds made once by ``preprocess split``, and tasks from any labelled corpus."""

import csv
import shutil

import numpy as np
import pytest
from scipy import sparse

from ecgdist.data.index import CorruptIndex, INDEX_DIR, read_index, split_record
from ecgdist.files import file_sha256
from ecgdist.tasks import physionet2021
from ecgdist.tasks.benchmark import NoFolds, task_splits
from ecgdist.tasks.folds import TooFewGroups, grouped_folds
from preprocess.__main__ import main as preprocess_main


def test_made_folds_keep_a_patients_records_together_and_spread_a_rare_class():
    group = np.repeat(np.arange(60, dtype=np.uint32) * 7919, 3)  # 60 patients, 3 records each
    rare = np.zeros((len(group), 1))
    rare[np.arange(0, 60, 3) * 3 + 1] = 1  # 20 patients have the class on their middle record
    folds = grouped_folds(group, sparse.csr_matrix(rare), seed=0)
    assert all(len(set(folds[group == g])) == 1 for g in np.unique(group))
    assert sorted(set(folds)) == list(range(1, 11))
    positives = np.bincount(folds[rare[:, 0] == 1], minlength=11)[1:]
    assert positives.min() >= 1 and positives.max() - positives.min() <= 1  # 20 positive patients over 10 folds
    assert np.array_equal(folds, grouped_folds(group, sparse.csr_matrix(rare), seed=0))
    assert not np.array_equal(folds, grouped_folds(group, sparse.csr_matrix(rare), seed=1))


def test_labels_too_rare_to_spread_leave_a_seeded_deal_of_equal_folds():
    group = np.arange(20, dtype=np.uint32)
    rare = sparse.csr_matrix(np.eye(20)[:, :3])  # three labels of one patient each: none can reach every fold
    folds = grouped_folds(group, rare, seed=5)
    assert np.bincount(folds, minlength=11)[1:].tolist() == [2] * 10
    assert np.array_equal(folds, grouped_folds(group, rare, seed=5))


def test_fewer_patients_than_folds_is_a_clear_error():
    with pytest.raises(TooFewGroups, match="9 patients .* cannot fill 10 folds"):
        grouped_folds(np.arange(9, dtype=np.uint32), sparse.csr_matrix(np.ones((9, 1))), seed=0)


def test_preprocess_split_writes_checksummed_folds_and_a_rerun_moves_nothing(physionet_corpus, tmp_path, capsys):
    corpus = tmp_path / "other"
    shutil.copytree(physionet_corpus, corpus)
    assert preprocess_main(["split", str(corpus), "--seed", "3"]) == 0
    assert "made: 10 folds, seed 3, 20 records of 20 patients/recordings (0 with a patient id)" in capsys.readouterr().out
    folds = read_index(corpus).fold
    assert np.bincount(folds, minlength=11)[1:].tolist() == [2] * 10  # no patient ids: grouped by recording
    saved = corpus / INDEX_DIR / "split.npy"
    record = split_record(corpus)
    assert record["seed"] == 3 and record["sha256"] == file_sha256(saved)
    assert record["records_per_split"] == {"train": 16, "val": 2, "test": 2}
    before = saved.read_bytes()
    assert preprocess_main(["split", str(corpus), "--seed", "3"]) == 0
    assert "unchanged (already split)" in capsys.readouterr().out
    assert preprocess_main(["split", str(corpus), "--seed", "4"]) == 2
    assert "already split with --seed 3" in capsys.readouterr().err
    assert saved.read_bytes() == before
    np.save(saved, np.ones(20, dtype=np.int8))  # a hand-edited split no longer matches the index checksums
    with pytest.raises(CorruptIndex, match="split.npy: does not match its checksum"):
        read_index(corpus)


def test_a_corpus_with_its_own_folds_is_not_split(ptbxl_corpus, capsys):
    assert preprocess_main(["split", str(ptbxl_corpus), "--seed", "0"]) == 2
    assert "has the source's own folds (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)" in capsys.readouterr().err
    assert split_record(ptbxl_corpus) is None


def test_a_corpus_without_folds_names_the_command_that_makes_them(physionet_corpus):
    with pytest.raises(NoFolds, match=f"python -m preprocess split {physionet_corpus} --seed 0"):
        task_splits(physionet_corpus, "physionet2021", "georgia")


def test_physionet2021_sources_and_scored_classes():
    assert len(physionet2021.CLASSES) == 26 and len(physionet2021.SCORED) == 30
    assert [physionet2021.source_of(f"physionet2021:{name}#0") for name in
            ("training/cpsc_2018/g1/A0001", "Q0001", "E07500", "JS10646", "JS10647", "HR00001", "S0001", "I0001")] == \
        ["cpsc2018", "cpsc_extra", "georgia", "chapman_shaoxing", "ningbo", "ptbxl", "ptb", "st_petersburg"]
    assert physionet2021.scored_class("59118001") == ("713427006",)  # RBBB scored as complete RBBB
    assert physionet2021.scored_class("17338001") == ("427172004",)  # VPB as PVC
    assert physionet2021.scored_class("55930002") == ()  # unscored


def test_a_physionet2021_task_holds_its_source_over_the_scored_classes_it_has(split_physionet_corpus):
    georgia = task_splits(split_physionet_corpus, "physionet2021", "georgia")
    ids = np.concatenate([s.record_ids for s in georgia.splits.values()])
    assert len(ids) == 10 and all(i.startswith("physionet2021:E075") for i in ids)
    # The Georgia headers' scored codes: SB, STach, LQT, NSR, and RBBB (E07509), which counts as CRBBB.
    assert georgia.classes == sorted(["426177001", "427084000", "111975006", "426783006", "713427006"])
    assert len(georgia.left_out) == 21 and "164889003" in georgia.left_out
    split = next(s for s in georgia.splits.values() if "physionet2021:E07509#0" in s.record_ids)
    row = split.targets[list(split.record_ids).index("physionet2021:E07509#0")].toarray().ravel()
    assert {georgia.classes[k] for k in np.flatnonzero(row)} == {"713427006", "426177001"}
    ningbo = task_splits(split_physionet_corpus, "physionet2021", "ningbo")
    assert sum(len(s.indices) for s in ningbo.splits.values()) == 10 and "284470004" in ningbo.classes


def test_code15_scores_six_abnormalities_and_keeps_exams_without_any(code15_corpus, shared_data):
    task = task_splits(code15_corpus, "code15", "abnormalities")
    assert task.classes == ["1dAVb", "AF", "LBBB", "RBBB", "SB", "ST"] and task.left_out == []
    with open(shared_data / "code15-mini" / "exams.csv") as f:
        exams = list(csv.DictReader(f))
    assert sum(len(s.indices) for s in task.splits.values()) == len(exams) == 10
    counted = sum(np.asarray(s.targets.sum(axis=0)).ravel() for s in task.splits.values())
    assert counted.tolist() == [sum(e[c] == "True" for e in exams) for c in task.classes]


def test_a_labels_task_maps_a_hospitals_codes_and_keeps_patients_in_one_fold(hospital_corpus, tmp_path):
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("code,class\nSTACH,tachycardia\nSBRAD,bradycardia\nPAC,ectopic\nPAC,atrial\n")
    task = task_splits(hospital_corpus, "labels", "all", mapping_table=str(mapping))
    assert task.classes == ["atrial", "bradycardia", "ectopic", "tachycardia"]
    with open(hospital_corpus.parent / "labels.csv") as f:
        table = list(csv.DictReader(f))
    counted = dict(zip(task.classes, sum(np.asarray(s.targets.sum(axis=0)).ravel() for s in task.splits.values())))
    has = {code: sum(code in row["labels"].split(";") for row in table) for code in ("STACH", "SBRAD", "PAC")}
    assert counted == {"atrial": has["PAC"], "ectopic": has["PAC"], "bradycardia": has["SBRAD"],
                       "tachycardia": has["STACH"]}
    own = task_splits(hospital_corpus, "labels", "all")  # no table: the corpus's own codes
    assert own.classes == sorted({code for row in table for code in row["labels"].split(";")})
    folds = read_index(hospital_corpus).fold
    patients = read_index(hospital_corpus).group
    assert all(len(set(folds[patients == p])) == 1 for p in np.unique(patients)) and len(np.unique(patients)) == 10
