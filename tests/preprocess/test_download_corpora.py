"""`python -m preprocess download` for PhysioNet 2021, MIMIC-IV-ECG and CODE-15 %, each followed by its
`python -m preprocess SOURCE`, against local servers laid out as PhysioNet and Zenodo publish them."""

import hashlib
import json
import shutil
import zipfile

from conftest import build_corpus
from launch import preprocess
from publisher_mirror import serve
from real_records import write_mimic_layout

from ecgdist.data.shards import read_manifest

ZENODO_RECORD = "api/records/4916206"


def publish_physionet(root):
    """SHA256SUMS.txt over every file, as PhysioNet publishes it beside a dataset."""
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.relative_to(root)}"
            for p in sorted(root.rglob("*")) if p.is_file()]
    (root / "SHA256SUMS.txt").write_text("\n".join(sums) + "\n")
    return root


def download(dataset, url, out, *extra, **kwargs):
    return preprocess("download", dataset, out, "--base-url", url, "--quiet", *extra, **kwargs)


def test_physionet2021_downloads_a_subset_and_preprocesses(shared_data, tmp_path):
    root = tmp_path / "challenge-2021"
    group = root / "training" / "ptb-xl" / "g1"
    group.mkdir(parents=True)
    for path in (shared_data / "physionet2021-mini").iterdir():
        shutil.copyfile(path, group / path.name)
    with serve(publish_physionet(root), "/files/challenge-2021/1.0.3/") as (handler, url):
        done = download("physionet2021", url, tmp_path / "dl", "--records", "4")
        assert done.returncode == 0, done.stderr
        assert "8 files fetched" in done.stdout and "0 without a published checksum" in done.stdout
        assert (tmp_path / "dl/training/ptb-xl/g1/HR06003.mat").read_bytes() == (group / "HR06003.mat").read_bytes()
        again = download("physionet2021", url, tmp_path / "dl", "--records", "4")
        assert "0 files fetched, 8 already verified" in again.stdout
    manifest = read_manifest(build_corpus("physionet2021", tmp_path / "dl", tmp_path / "corpus"))
    assert manifest.written_inputs == 4 and manifest.rejected == 0


def test_mimic_iv_ecg_downloads_its_tables_and_records_then_preprocesses(shared_data, tmp_path):
    root = publish_physionet(write_mimic_layout(shared_data, tmp_path / "mimic-iv-ecg", count=3))
    with serve(root, "/files/mimic-iv-ecg/1.0/") as (handler, url):
        done = download("mimic-iv-ecg", url, tmp_path / "dl", "--records", "2")
        assert done.returncode == 0, done.stderr
    assert "6 files fetched" in done.stdout  # two tables, two records of .hea + .dat
    manifest = read_manifest(build_corpus("mimic-iv-ecg", tmp_path / "dl", tmp_path / "corpus"))
    assert manifest.written_inputs == 2 and manifest.rejected == 1  # listed in record_list.csv, not fetched
    assert "Sinus rhythm" in manifest.labels


def publish_zenodo(root, shared_data, parts=2, corrupt_md5=False):
    """A Zenodo record: the API's JSON (files with md5 checksums and links) and the files it links."""
    files_dir = root / "records" / "4916206" / "files"
    files_dir.mkdir(parents=True)
    shutil.copyfile(shared_data / "code15-mini" / "exams.csv", files_dir / "exams.csv")
    for k in range(parts):  # the mini corpus has one part; the second is a copy under the next name
        with zipfile.ZipFile(files_dir / f"exams_part{k}.zip", "w") as z:
            z.write(shared_data / "code15-mini" / "exams_part0.hdf5", f"exams_part{k}.hdf5")
    return files_dir


def zenodo_json(files_dir, url, corrupt=(), unlisted=()):
    entries = []
    for path in sorted(files_dir.iterdir()):
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        entries.append({"key": path.name, "checksum": f"md5:{'0' * 32 if path.name in corrupt else md5}",
                        "links": {"self": f"{url}records/4916206/files/{path.name}"}})
        if path.name in unlisted:
            del entries[-1]["checksum"]
    return json.dumps({"id": 4916206, "files": entries})


def code15_server(tmp_path, shared_data, corrupt=(), unlisted=()):
    root = tmp_path / "zenodo"
    files_dir = publish_zenodo(root, shared_data)
    context = serve(root, "/")
    handler, url = context.__enter__()
    (root / "api" / "records").mkdir(parents=True)
    (root / ZENODO_RECORD).write_text(zenodo_json(files_dir, url, corrupt, unlisted))
    return context, url + ZENODO_RECORD


def test_code15_downloads_parts_checks_md5_unzips_and_preprocesses(shared_data, tmp_path):
    context, record_url = code15_server(tmp_path, shared_data, unlisted=("exams.csv",))
    try:
        done = download("code15", record_url, tmp_path / "dl", "--parts", "1")
        assert done.returncode == 0, done.stderr
        assert "2 files fetched" in done.stdout and "1 without a published checksum (unverified)" in done.stdout
        assert (tmp_path / "dl/exams_part0.hdf5").read_bytes() == \
            (shared_data / "code15-mini/exams_part0.hdf5").read_bytes()
        assert not (tmp_path / "dl/exams_part1.hdf5").exists() and not list((tmp_path / "dl").glob("*.zip"))
        again = download("code15", record_url, tmp_path / "dl", "--parts", "1")
        assert "0 files fetched, 2 already verified" in again.stdout
    finally:
        context.__exit__(None, None, None)
    manifest = read_manifest(build_corpus("code15", tmp_path / "dl", tmp_path / "corpus"))
    assert manifest.written_inputs == 10


def test_a_wrong_md5_keeps_nothing_and_fails(shared_data, tmp_path):
    context, record_url = code15_server(tmp_path, shared_data, corrupt=("exams_part0.zip",))
    try:
        done = download("code15", record_url, tmp_path / "dl", "--parts", "1")
    finally:
        context.__exit__(None, None, None)
    assert done.returncode == 1 and "checksum mismatch: exams_part0.zip" in done.stderr
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["exams.csv"]


def test_an_unreachable_host_a_404_and_a_full_disk_are_one_line_each(shared_data, tmp_path):
    unreachable = download("physionet2021", "http://127.0.0.1:9/files/challenge-2021/1.0.3/", tmp_path / "a")
    assert unreachable.returncode == 1 and "error: download failed: cannot reach 127.0.0.1:9" in unreachable.stderr
    with serve(tmp_path / "empty", "/files/mimic-iv-ecg/1.0/") as (handler, url):
        (tmp_path / "empty").mkdir()
        missing = download("mimic-iv-ecg", url, tmp_path / "b")
    assert missing.returncode == 1 and "SHA256SUMS.txt: HTTP 404" in missing.stderr
    root = tmp_path / "challenge-2021" / "training" / "ptb-xl" / "g1"
    root.mkdir(parents=True)
    for path in (shared_data / "physionet2021-mini").iterdir():
        shutil.copyfile(path, root / path.name)

    with serve(publish_physionet(tmp_path / "challenge-2021"), "/files/challenge-2021/1.0.3/") as (handler, url):
        full = download("physionet2021", url, tmp_path / "c", "--records", "2", file_size_limit=100_000)
    assert full.returncode == 1 and "Traceback" not in full.stderr
    (line,) = [ln for ln in full.stderr.splitlines() if ln.startswith("error: ")]
    assert "too large" in line.lower() and ".mat.part" in line
    assert not list((tmp_path / "c").rglob("*.mat")), "no signal file is kept half-written (only its .part to resume)"
