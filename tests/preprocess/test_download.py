"""``python -m preprocess download ptbxl`` against a local server in PhysioNet's URL layout."""

import hashlib
import shutil

import pytest
from conftest import build_corpus
from launch import preprocess
from publisher_mirror import serve

from ecgdist.data.shards import read_manifest

PREFIX = "/files/ptb-xl/1.0.3/"


@pytest.fixture()
def mirror(shared_data, tmp_path):
    root = tmp_path / "physionet"
    shutil.copytree(shared_data / "ptbxl-mini", root)
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.relative_to(root)}"
            for p in sorted(root.rglob("*")) if p.is_file()]
    (root / "SHA256SUMS.txt").write_text("\n".join(sums) + "\n")  # as PhysioNet publishes it
    with serve(root, PREFIX) as (handler, url):
        yield handler, url


def download(url, out, *extra):
    return preprocess("download", "ptbxl", out, "--records", "12", "--base-url", url, "--quiet", *extra)


def test_downloads_metadata_and_records_then_preprocesses(mirror, shared_data, tmp_path):
    handler, url = mirror
    result = download(url, tmp_path / "ptbxl")
    assert result.returncode == 0, result.stderr
    source = shared_data / "ptbxl-mini"
    # ids 1-12 exist only at 100 Hz here: the 500 Hz request falls back to them.
    assert (tmp_path / "ptbxl/records100/00000/00007_lr.dat").read_bytes() == \
        (source / "records100/00000/00007_lr.dat").read_bytes()
    assert "12 not on the server" in result.stdout
    manifest = read_manifest(build_corpus("ptbxl", tmp_path / "ptbxl", tmp_path / "corpus"))
    assert manifest.written_inputs == 12 and manifest.rejected == 98  # the rest of the CSV was not fetched
    assert manifest.extra["source_version"] == "1.0.3"  # from PhysioNet's URL, for the results table
    again = download(url, tmp_path / "ptbxl")
    assert "0 files fetched, 26 already verified" in again.stdout


def test_dropped_connection_resumes_where_it_stopped(mirror, tmp_path):
    handler, url = mirror
    name = "records100/00000/00003_lr.dat"
    handler.drop_once.add(name)
    result = download(url, tmp_path / "ptbxl")
    assert result.returncode == 0, result.stderr
    ranges = [r for n, r in handler.requests if n == name]
    assert ranges[0] is None and ranges[1] == "bytes=8000-"  # the second request continues at byte 24000/3
    assert hashlib.sha256((tmp_path / "ptbxl" / name).read_bytes()).hexdigest() in \
        (handler.root / "SHA256SUMS.txt").read_text()


def test_corrupted_file_is_detected_and_not_kept(mirror, shared_data, tmp_path):
    handler, url = mirror
    name = "records100/00000/00005_lr.dat"
    handler.corrupt.add(name)
    result = download(url, tmp_path / "ptbxl")
    assert result.returncode == 1 and f"checksum mismatch: {name}" in result.stderr
    assert not (tmp_path / "ptbxl" / name).exists() and not list((tmp_path / "ptbxl").rglob("*.part"))
    good = "records100/00000/00006_lr.dat"  # the other files land whole
    assert (tmp_path / "ptbxl" / good).read_bytes() == (shared_data / "ptbxl-mini" / good).read_bytes()


def test_a_complete_part_left_before_its_checksum_is_finished_by_the_rerun(mirror, shared_data, tmp_path):
    """Killed after the last byte but before the check: the server answers the resumed range with 416."""
    handler, url = mirror
    name = "records100/00000/00004_lr.dat"
    part = tmp_path / "ptbxl" / (name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes((shared_data / "ptbxl-mini" / name).read_bytes())
    result = download(url, tmp_path / "ptbxl")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ptbxl" / name).read_bytes() == (shared_data / "ptbxl-mini" / name).read_bytes()
    assert not part.exists() and [r for n, r in handler.requests if n == name] == []  # nothing fetched again


def test_a_complete_part_without_a_published_checksum_is_kept_and_reported_unverified(mirror, shared_data, tmp_path):
    from preprocess.download import Downloader, DownloadReport

    handler, url = mirror
    name = "records100/00000/00004_lr.dat"
    part = tmp_path / (name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes((shared_data / "ptbxl-mini" / name).read_bytes())
    report = DownloadReport()
    assert Downloader(url, tmp_path).fetch(name, report)  # no checksums read: the server's 416 ends the resume
    assert report.unverified == [name] and not part.exists()
    assert (tmp_path / name).read_bytes() == (shared_data / "ptbxl-mini" / name).read_bytes()
    assert [r for n, r in handler.requests if n == name] == ["bytes=24000-"]
