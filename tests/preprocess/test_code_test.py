"""CODE-test's layout (ecg_tracings.hdf5, attributes.csv, annotations/gold_standard.csv) through
``python -m preprocess code-test``, against CODE-15 %'s own reader on the same tracings."""

import csv

import numpy as np
from conftest import build_corpus, code15_as_code_test

from ecgdist.data.dataset import ShardDataset
from ecgdist.data.index import read_index
from ecgdist.data.shards import read_manifest, read_metadata, read_rejected


def test_code_test_exams_read_as_the_same_tracings_read_through_code15(shared_data, tmp_path):
    """Row i of every file is exam i: the signals, their content fingerprints, the gold-standard labels
    and the attributes land as CODE-15 %'s reader lands the same exams."""
    folder = code15_as_code_test(shared_data / "code15-mini", tmp_path / "layout")
    corpus = build_corpus("code-test", folder, tmp_path / "code_test")
    reference = build_corpus("code15", shared_data / "code15-mini", tmp_path / "code15")
    with open(shared_data / "code15-mini" / "exams.csv", newline="") as f:
        exams = list(csv.DictReader(f))
    ours, theirs = read_metadata(corpus), read_metadata(reference)
    assert read_manifest(corpus).inputs == 10 and read_manifest(corpus).rejected == 0
    row_of = {rid: k for k, rid in enumerate(theirs["record_id"])}
    for k, exam in enumerate(exams, start=1):
        i, j = list(ours["record_id"]).index(f"code-test:{k}#0"), row_of[f"code15:{exam['exam_id']}#0"]
        labels = [c for c in ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST") if exam[c] == "True"]
        assert sorted(filter(None, ours["labels"][i].split(";"))) == sorted(labels)
        assert (ours["age"][i], ours["sex"][i], ours["patient_id"][i]) == (float(exam["age"]),
                                                                            int(exam["is_male"] == "True"), str(k))
        assert ours["flags"][i] == theirs["flags"][j]  # the 7.3 s exams flagged padded in both
        np.testing.assert_array_equal(ShardDataset(corpus)[i]["signal"], ShardDataset(reference)[j]["signal"])
    fingerprints = np.sort(read_index(corpus).fingerprints(corpus))
    assert np.array_equal(fingerprints, np.sort(read_index(reference).fingerprints(reference)))


def test_a_bad_gold_standard_row_is_rejected_with_its_reason_and_the_others_land(shared_data, tmp_path):
    folder = code15_as_code_test(shared_data / "code15-mini", tmp_path / "layout")
    gold = folder / "annotations" / "gold_standard.csv"
    lines = gold.read_text().splitlines()
    lines[3] = lines[3].replace("0", "maybe", 1)  # exam 3
    gold.write_text("\n".join(lines + ["0,0,0,1,0,0"]) + "\n")  # an 11th row: no tracing for it
    corpus = build_corpus("code-test", folder, tmp_path / "code_test")
    manifest = read_manifest(corpus)
    assert (manifest.inputs, manifest.rejected) == (11, 2)
    reasons = {r["record_id"]: r["reason"] for r in read_rejected(corpus)}
    assert "'maybe' is not a boolean" in reasons["code-test:3"]
    assert "no tracing for it (ecg_tracings.hdf5 holds 10)" in reasons["code-test:11"]
    landed = {rid.split("#")[0] for rid in read_metadata(corpus)["record_id"]}
    assert landed == {f"code-test:{k}" for k in range(1, 11) if k != 3}  # every good exam, at its own position
