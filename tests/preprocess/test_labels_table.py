"""`python -m preprocess wfdb INPUT OUTPUT --labels TABLE.csv`: a labels table makes any WFDB folder a labelled corpus."""

import json

import h5py
from launch import preprocess

from ecgdist.data.shards import read_manifest, read_rejected

TABLE = """record,labels,age,sex,patient_id
s0010_re,164865005;MI_TABLE,77,M,patient-7
ghost,426783006,50,F,patient-8
100,164889003,60,X,patient-9
"""


def test_a_labels_table_labels_records_and_reports_what_does_not_match(shared_data, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text(TABLE)
    out = tmp_path / "c"
    done = preprocess("wfdb", shared_data / "wfdb-samples", out, "--labels", table)
    assert done.returncode == 0, done.stderr
    manifest = read_manifest(out)
    assert manifest.written_inputs == 1 and manifest.labels == {"164865005": 3, "MI_TABLE": 3}  # 38 s: 3 windows
    with h5py.File(out / manifest.shards[0].file) as f:
        assert set(f["labels"].asstr()[:]) == {"164865005;MI_TABLE"}  # the table's, not the header's comments
        assert f["age"][0] == 77 and f["sex"][0] == 1 and f["patient_id"].asstr()[0] == "patient-7"  # header: 81, female
    reasons = {}
    for rejection in read_rejected(out):
        reasons.setdefault(rejection["record_id"], []).append(rejection["reason"])
    assert len(reasons["wfdb:ghost"]) == 1 and "no such record" in reasons["wfdb:ghost"][0]
    bad_row, no_row = reasons["wfdb:100"]  # its row is malformed, so the record has none
    assert "bad CSV row (line 4)" in bad_row and "sex 'X'" in bad_row and "no row in the labels table" in no_row
    assert manifest.inputs == manifest.written_inputs + manifest.rejected


def test_a_record_without_a_row_is_rejected_and_bare_names_must_be_unique(shared_data, tmp_path):
    folder = tmp_path / "export"
    for sub in ("2019", "2020"):
        (folder / sub).mkdir(parents=True)
        for suffix in (".hea", ".dat", ".xyz"):
            (folder / sub / f"s0010_re{suffix}").symlink_to(shared_data / "wfdb-samples" / f"s0010_re{suffix}")
    table = tmp_path / "labels.csv"
    table.write_text("record,labels\ns0010_re,A\n2020/s0010_re,B\n")
    out = tmp_path / "c"
    assert preprocess("wfdb", folder, out, "--labels", table).returncode == 0
    reasons = {r["record_id"]: r["reason"] for r in read_rejected(out)}
    assert "matches 2 records" in reasons["wfdb:s0010_re"]
    assert "no row in the labels table" in reasons["wfdb:2019/s0010_re"]
    assert read_manifest(out).labels == {"B": 3} and read_manifest(out).written_inputs == 1


def test_a_listing_made_with_a_labels_table_is_refused_without_it(shared_data, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text(TABLE)
    listing = tmp_path / "l.jsonl"
    made = preprocess("list", "wfdb", shared_data / "wfdb-samples", listing, "--labels", table)
    assert made.returncode == 0 and json.loads(listing.read_text().splitlines()[0])["labels"] == str(table)
    refused = preprocess("wfdb", shared_data / "wfdb-samples", tmp_path / "c", "--listing", listing)
    assert refused.returncode == 2 and "labels:" in refused.stderr


def test_excel_tables_unclosed_quotes_and_empty_label_cells(shared_data, tmp_path, caplog, capsys):
    """What spreadsheets write: a byte-order mark is read; an unclosed quote stops the run naming its
    line with nothing written; rows without codes are counted (their records are negatives for every code)."""
    import logging

    from preprocess.__main__ import main

    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfrecord,labels\ns0010_re,A\n100,\n")
    with caplog.at_level(logging.WARNING):
        assert main(["wfdb", str(shared_data / "wfdb-samples"), str(tmp_path / "c"), "--labels", str(bom),
                     "--quiet"]) == 0
    manifest = read_manifest(tmp_path / "c")
    assert manifest.labels == {"A": 3}  # the column "record" found despite the BOM
    assert [r["reason"].split(" I,")[0] for r in read_rejected(tmp_path / "c")] == ["missing standard leads"]
    assert "1 of 2 rows have no label codes; those records are negatives for every code" in caplog.text
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text('record,labels\ns0010_re,A\n100,"B;C\n')
    assert main(["wfdb", str(shared_data / "wfdb-samples"), str(tmp_path / "d"), "--labels", str(unclosed),
                 "--quiet"]) != 0
    assert f"{unclosed}: the row starting on line 3 is not valid CSV" in capsys.readouterr().err
    assert not (tmp_path / "d" / "manifest.json").exists() and not list((tmp_path / "d").glob("**/*.h5"))
