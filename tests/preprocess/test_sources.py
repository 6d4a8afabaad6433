"""Each source's real records land with their labels, folds and demographics."""

import ast
import csv

import h5py
import numpy as np
import pytest
import wfdb
from conftest import build_corpus
from real_records import write_mimic_layout
from scipy.signal import resample_poly

from ecgdist.data.shards import FLAG_PADDED, FLAG_RESAMPLED, read_manifest, read_metadata, read_rejected, split_labels


def ptbxl_rows(shared_data):
    with open(shared_data / "ptbxl-mini" / "ptbxl_database.csv") as f:
        return {int(r["ecg_id"]): r for r in csv.DictReader(f)}


def test_every_ptbxl_record_lands_with_its_labels_and_fold(ptbxl_corpus, shared_data):
    manifest = read_manifest(ptbxl_corpus)
    assert (manifest.inputs, manifest.written_inputs, manifest.rejected, manifest.records) == (110, 110, 0, 110)
    table = read_metadata(ptbxl_corpus)
    rows = ptbxl_rows(shared_data)
    for record_id, labels, fold, sex, age in zip(table["record_id"], table["labels"], table["fold"],
                                                 table["sex"], table["age"]):
        row = rows[int(record_id.split(":")[1].split("#")[0])]
        assert sorted(split_labels(labels)) == sorted(ast.literal_eval(row["scp_codes"]))
        assert fold == int(row["strat_fold"])
        assert sex == (0 if row["sex"] == "1" else 1)  # PTB-XL codes 1 as female
        assert age == pytest.approx(float(row["age"]))


def stored_signal(corpus, record_id):
    table = read_metadata(corpus, ["record_id"])
    index = list(table["record_id"]).index(record_id)
    manifest = read_manifest(corpus)
    with h5py.File(corpus / manifest.shards[table["shard"][index]].file) as f:
        return f["signals"][table["row"][index]].astype(np.float64), int(f["flags"][table["row"][index]])


def test_stored_500hz_record_equals_source_within_float16(ptbxl_corpus, shared_data):
    source = wfdb.rdrecord(str(shared_data / "ptbxl-mini/records500/06000/06003_hr")).p_signal.T
    stored, flags = stored_signal(ptbxl_corpus, "ptbxl:6003#0")
    assert flags & FLAG_RESAMPLED == 0
    np.testing.assert_allclose(stored, source, rtol=1e-3, atol=1e-3)


def test_100hz_record_is_resampled_to_the_requested_rate(ptbxl_corpus, shared_data):
    source = wfdb.rdrecord(str(shared_data / "ptbxl-mini/records100/00000/00042_lr")).p_signal.T
    stored, flags = stored_signal(ptbxl_corpus, "ptbxl:42#0")
    assert stored.shape == (12, 5000) and flags & FLAG_RESAMPLED
    np.testing.assert_allclose(stored, resample_poly(source, 5, 1, axis=-1), rtol=1e-3, atol=2e-3)


def test_physionet2021_records_carry_snomed_age_and_sex(cinc_corpus):
    table = read_metadata(cinc_corpus)
    by_id = {rid.split(":")[1].split("#")[0]: i for i, rid in enumerate(table["record_id"])}
    assert len(by_id) == 10
    i = by_id["HR06002"]
    assert split_labels(table["labels"][i]) == ["426177001", "426783006", "713426002"]
    assert (table["age"][i], table["sex"][i]) == (29, 1)
    assert (table["age"][by_id["HR06000"]], table["sex"][by_id["HR06000"]]) == (59, 0)


def test_code15_exams_carry_labels_and_short_exams_are_flagged_padded(shared_data, tmp_path):
    corpus = build_corpus("code15", shared_data / "code15-mini", tmp_path / "c")
    manifest = read_manifest(corpus)
    assert manifest.inputs == 10 and manifest.rejected == 0  # the dummy exam_id 0 is not an input
    assert manifest.labels == {"1dAVb": 3, "RBBB": 3, "SB": 2, "ST": 2}
    table = read_metadata(corpus)
    padded = (table["flags"] & FLAG_PADDED) > 0
    assert padded.sum() == 6  # the six 2,934-sample (7.3 s) exams
    assert (table["sex"] == 1).sum() == 7
    i = list(table["record_id"]).index("code15:270272#0")
    assert (table["age"][i], table["patient_id"][i], table["labels"][i]) == (58, "125585", "RBBB")


def test_wfdb_folder_windows_ptb_record_and_rejects_two_lead_record(shared_data, tmp_path):
    corpus = build_corpus("wfdb", shared_data / "wfdb-samples", tmp_path / "c")
    table = read_metadata(corpus)
    assert list(table["record_id"]) == ["wfdb:s0010_re#0", "wfdb:s0010_re#1", "wfdb:s0010_re#2"]
    assert (table["age"][0], table["sex"][0]) == (81, 0)
    source = wfdb.rdrecord(str(shared_data / "wfdb-samples/s0010_re")).p_signal[:, :12].T
    expected = resample_poly(source, 1, 2, axis=-1)  # 1000 Hz -> 500 Hz
    stored, _ = stored_signal(corpus, "wfdb:s0010_re#1")
    np.testing.assert_allclose(stored, expected[:, 5000:10000], rtol=2e-3, atol=2e-3)
    (rejected,) = read_rejected(corpus)
    assert rejected["record_id"] == "wfdb:100"
    assert "missing standard leads I, II, III, aVR, aVL, aVF, V1, V2, V3, V4, V6" in rejected["reason"]


def test_mimic_iv_ecg_layout_with_machine_statements(shared_data, tmp_path):
    root = write_mimic_layout(shared_data, tmp_path / "mimic")
    corpus = build_corpus("mimic-iv-ecg", root, tmp_path / "c")
    manifest = read_manifest(corpus)
    assert manifest.records == 3 and manifest.labels == {"Atrial fibrillation": 1, "Normal ECG": 2, "Sinus rhythm": 2}
    table = read_metadata(corpus)
    assert list(table["patient_id"]) == ["10000000", "10000001", "10000002"]
