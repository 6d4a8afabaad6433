"""Crashes never leave half files; reruns resume; slices and SLURM arrays equal a single run."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, build_corpus
from launch import preprocess, start_preprocess
from slurm_jobs import FINAL_STATES, sbatch, wait_for_job

from ecgdist.data.shards import read_manifest, verify_shards

OPTIONS = ("--shard-size", "10")


@pytest.fixture(scope="module")
def reference(shared_data, tmp_path_factory):
    return read_manifest(build_corpus("ptbxl", shared_data / "ptbxl-mini",
                                      tmp_path_factory.mktemp("ref") / "c", *OPTIONS)).to_dict()


def test_killed_run_resumes_to_the_same_corpus(shared_data, tmp_path, reference):
    out = tmp_path / "c"
    proc = start_preprocess("ptbxl", shared_data / "ptbxl-mini", out, "--quiet", *OPTIONS, output=tmp_path / "log")
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "parts").glob("chunk-*.json"))) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list((out / "parts").glob("chunk-*.json")))
    assert 3 <= finished < 11, "the kill should land mid-run"
    assert not (out / "manifest.json").exists()
    build_corpus("ptbxl", shared_data / "ptbxl-mini", out, *OPTIONS)
    assert read_manifest(out).to_dict() == reference  # same shards, byte for byte (sha256)
    assert not list(out.glob("*.tmp")) and verify_shards(out) == []


def test_slices_merged_equal_a_single_run(shared_data, tmp_path, reference):
    out = tmp_path / "c"
    for index in (2, 0, 1):
        build_corpus("ptbxl", shared_data / "ptbxl-mini", out, *OPTIONS, "--slice", f"{index}/3")
        assert not (out / "manifest.json").exists()
    assert preprocess("merge", out).returncode == 0
    assert read_manifest(out).to_dict() == reference


def test_merge_with_a_missing_slice_names_the_gap(shared_data, tmp_path):
    out = tmp_path / "c"
    build_corpus("ptbxl", shared_data / "ptbxl-mini", out, *OPTIONS, "--slice", "0/2")
    result = preprocess("merge", out)
    # Exit 3, not a failure: slurm/preprocess.sh tells "other slices still running" from a broken merge.
    assert result.returncode == 3 and "merge deferred" in result.stderr and "chunks are unfinished" in result.stderr


def test_parallel_workers_give_the_same_corpus(shared_data, tmp_path, reference):
    out = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "c", *OPTIONS, "--workers", "2")
    assert read_manifest(out).to_dict() == reference


@pytest.mark.slurm
def test_slurm_job_array_produces_the_same_corpus(slurm_cluster, shared_data, tmp_path, reference):
    out = tmp_path / "c"
    env = {**os.environ, "ECGDIST_PYTHON": sys.executable}
    job = sbatch("--array=0-2", "--cpus-per-task=1", "-o", str(tmp_path / "%A_%a.out"),
                 str(REPO / "slurm/preprocess.sh"), "ptbxl", str(shared_data / "ptbxl-mini"), str(out), *OPTIONS,
                 cwd=tmp_path, env=env)
    assert wait_for_job(job, timeout_s=600) == "COMPLETED"
    deadline = time.time() + 30  # sacct may report the array done a moment before the last merge lands
    while not (out / "manifest.json").exists() and time.time() < deadline:
        time.sleep(0.5)
    assert read_manifest(out).to_dict() == reference
    logs = [p.read_text() for p in tmp_path.glob("*.out")]
    assert len(logs) == 3 and sum(log.count(f"into {out}/listing.jsonl") for log in logs) == 1, \
        "one task walks the input; the others read its listing"


@pytest.mark.parametrize("first, second", [("20", "50"), ("50", "20")])
def test_a_rerun_with_another_shard_size_is_refused_naming_it_and_changes_nothing(shared_data, tmp_path, first,
                                                                                 second):
    out = tmp_path / "c"
    assert preprocess("ptbxl", shared_data / "ptbxl-mini", out, "--shard-size", first).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = preprocess("ptbxl", shared_data / "ptbxl-mini", out, "--shard-size", second)
    assert again.returncode == 2 and f"shard_size: {first} then, {second} now" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert read_manifest(out).records == 110


def test_a_rerun_from_another_input_folder_is_refused(shared_data, tmp_path):
    out = tmp_path / "c"
    assert preprocess("wfdb", shared_data / "physionet2021-mini", out).returncode == 0
    again = preprocess("wfdb", shared_data / "wfdb-samples", out)
    assert again.returncode == 2 and "input:" in again.stderr and "listing_sha256" in again.stderr
    assert read_manifest(out).records == 10


@pytest.mark.parametrize("flag, value", [("--shard-size", "-5"), ("--shard-size", "0"), ("--rate", "0"),
                                         ("--rate", "-250"), ("--seconds", "0"), ("--seconds", "nan"),
                                         ("--workers", "0")])
def test_out_of_range_settings_are_refused_before_anything_is_written(shared_data, tmp_path, flag, value):
    out = tmp_path / "c"
    done = preprocess("ptbxl", shared_data / "ptbxl-mini", out, flag, value)
    assert done.returncode == 2 and flag in done.stderr and "positive" in done.stderr
    assert not out.exists()
    assert preprocess("ptbxl", shared_data / "ptbxl-mini", out).returncode == 0  # nothing blocks a later run


@pytest.mark.slurm
def test_a_real_merge_failure_fails_the_array_task_with_its_message(slurm_cluster, shared_data, tmp_path):
    out = tmp_path / "c"
    (out / "rejected.jsonl").mkdir(parents=True)  # the merge cannot write its rejection list
    env = {**os.environ, "ECGDIST_PYTHON": sys.executable}
    job = sbatch("--array=0-1", "--cpus-per-task=1", "-o", str(tmp_path / "%A_%a.out"),
                 str(REPO / "slurm/preprocess.sh"), "ptbxl", str(shared_data / "ptbxl-mini"), str(out), *OPTIONS,
                 cwd=tmp_path, env=env)
    deadline = time.time() + 600
    while time.time() < deadline:  # every task of the array in a final state
        states = subprocess.run(["sacct", "-j", job, "-X", "-n", "-P", "-o", "State"], capture_output=True,
                                text=True).stdout.split()
        if len(states) == 2 and all(state in FINAL_STATES for state in states):
            break
        time.sleep(1)
    assert "FAILED" in states, states  # the task that merged last fails; the other deferred to it
    logs = "".join(p.read_text() for p in tmp_path.glob("*.out"))
    assert "error: Is a directory" in logs and "failed (exit 1)" in logs and "Traceback" not in logs
    assert not (out / "manifest.json").exists()
