"""Corrupt, truncated, mislabelled and odd records are rejected with reasons; every good record lands."""

import csv
import json
import shutil

import numpy as np
import pytest
from conftest import build_corpus
from launch import preprocess

from ecgdist.data.shards import FLAG_NAN, read_manifest, read_metadata, read_rejected

HR = "records500/06000"


@pytest.fixture()
def damaged_ptbxl(shared_data, tmp_path):
    root = tmp_path / "ptbxl"
    shutil.copytree(shared_data / "ptbxl-mini", root)
    dat = lambda i: root / HR / f"0600{i}_hr.dat"  # noqa: E731
    # 6000: truncated signal file.
    dat(0).write_bytes(dat(0).read_bytes()[:50_000])
    # 6001: header does not describe its signal file (another record's samples).
    shutil.copy(dat(2), dat(1))
    # 6003: lead V3 entirely missing: WFDB's invalid-sample value everywhere in it.
    samples = np.fromfile(dat(3), dtype="<i2").reshape(5000, 12)
    samples[:, 8] = -32768
    fix_checksums(root / HR / "06003_hr.hea", samples)
    samples.tofile(dat(3))
    # 6004: a short dropout in lead II: repaired and flagged, not rejected.
    samples = np.fromfile(dat(4), dtype="<i2").reshape(5000, 12)
    samples[1000:1010, 1] = -32768
    fix_checksums(root / HR / "06004_hr.hea", samples)
    samples.tofile(dat(4))
    # 6005: missing signal file.
    dat(5).unlink()
    lines = (root / "ptbxl_database.csv").read_text().splitlines(keepends=True)
    # ecg_id 7: unparsable scp_codes; ecg_id 8: a code that scp_statements.csv lacks; ecg_id 9: cut short.
    lines[7] = lines[7].replace("{'", "{'BROKEN", 1).replace("}", "", 1)
    lines[8] = lines[8].replace("{'", "{'NOTACODE': 100.0, '", 1)
    lines[9] = lines[9][:40] + "\n"
    (root / "ptbxl_database.csv").write_text("".join(lines))
    return root


def fix_checksums(header, samples):
    """Keep the header's checksums true to the edited samples (so only the NaNs differ)."""
    sums = (samples.astype(np.int64).sum(0) + 32768) % 65536 - 32768
    out = []
    for line in header.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 9 and parts[0].endswith(".dat"):
            lead = len(out) - 1
            parts[6] = str(sums[lead])
            line = " ".join(parts)
        out.append(line)
    header.write_text("\n".join(out) + "\n")


def test_damaged_records_are_rejected_with_reasons_and_good_ones_land(damaged_ptbxl, tmp_path):
    corpus = build_corpus("ptbxl", damaged_ptbxl, tmp_path / "c")
    reasons = {r["record_id"]: r["reason"] for r in read_rejected(corpus)}
    assert "truncated" in reasons["ptbxl:6000"]
    assert "checksum mismatch" in reasons["ptbxl:6001"]
    assert reasons["ptbxl:6003"] == "no valid samples (all NaN) in lead V3"
    assert reasons["ptbxl:6005"] == "missing signal file 06005_hr.dat"
    assert "bad CSV row (line 8)" in reasons["ptbxl:7"]
    assert "SCP codes not in scp_statements.csv: NOTACODE" in reasons["ptbxl:8"]
    # ecg_id 9 was cut to its first 40 characters: its real field count, not the header's.
    cut = (damaged_ptbxl / "ptbxl_database.csv").read_text().splitlines()[9]
    header = (damaged_ptbxl / "ptbxl_database.csv").read_text().splitlines()[0]
    assert f"bad CSV row (line 10): {len(next(csv.reader([cut])))} fields where the header has " \
           f"{len(next(csv.reader([header])))}" in reasons["ptbxl:9"]
    assert len(reasons) == 7
    manifest = read_manifest(corpus)
    assert manifest.inputs == 110 == manifest.written_inputs + manifest.rejected
    table = read_metadata(corpus)
    landed = {rid.split(":")[1].split("#")[0] for rid in table["record_id"]}
    assert len(landed) == 103 and "6004" in landed and "6002" in landed
    flags = dict(zip(table["record_id"], table["flags"]))
    assert flags["ptbxl:6004#0"] & FLAG_NAN and not flags["ptbxl:6002#0"] & FLAG_NAN


def test_missing_database_is_a_clear_error(tmp_path):
    out = preprocess("ptbxl", tmp_path, tmp_path / "o")
    assert out.returncode == 2 and "scp_statements.csv not found: is this a PTB-XL folder?" in out.stderr


def test_rerun_with_another_recipe_is_refused(shared_data, tmp_path):
    build_corpus("code15", shared_data / "code15-mini", tmp_path / "c")
    out = preprocess("code15", shared_data / "code15-mini", tmp_path / "c", "--rate", "250")
    assert out.returncode == 2 and "different recipe (rate_hz differ)" in out.stderr


def test_inspect_json_reports_counts_and_recipe(ptbxl_corpus):
    out = preprocess("inspect", ptbxl_corpus, "--json").stdout
    summary = json.loads(out)
    assert (summary["records"], summary["rejected"], summary["shards"]) == (110, 0, 1)
    assert summary["recipe"]["rate_hz"] == 500 and summary["recipe"]["leads"][3] == "aVR"
    assert summary["label_histogram"]["NORM"] == 85


@pytest.mark.parametrize("rate", ["abc", "-500", "1e9", "0"])
def test_a_header_rate_that_is_no_plausible_ecg_rate_is_rejected_with_the_reason(shared_data, tmp_path, rate):
    folder = tmp_path / "records"
    shutil.copytree(shared_data / "ptbxl-mini" / HR, folder)
    header = folder / "06002_hr.hea"
    first, *rest = header.read_text().splitlines(keepends=True)
    fields = first.split()
    fields[2] = rate  # wfdb reads abc and -500 as 250 Hz, 1e9 as 1 Hz, 0 as a division by zero
    header.write_text(" ".join(fields) + "\n" + "".join(rest))
    corpus = build_corpus("wfdb", folder, tmp_path / "c")
    (rejected,) = read_rejected(corpus)
    assert rejected["record_id"] == "wfdb:06002_hr" and "sampling rate" in rejected["reason"]
    assert read_manifest(corpus).records == 9  # every other record lands, one window each
    # python -m ecgdist.predict applies the same rule.
    from ecgdist.data.records import RecordError
    from ecgdist.data.wfdb_io import read_wfdb

    with pytest.raises(RecordError, match="sampling rate"):
        read_wfdb(folder / "06002_hr")
