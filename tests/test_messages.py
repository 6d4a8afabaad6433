"""User errors end in one line naming the file and the problem, exit 1 or 2: no raw tracebacks."""

import argparse
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from ecgdist.models.net1d import Net1D


def run(*args):
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=REPO, capture_output=True, text=True)


@pytest.fixture()
def broken_manifest(ptbxl_corpus, tmp_path):
    import shutil

    corpus = tmp_path / "c"
    shutil.copytree(ptbxl_corpus, corpus)
    (corpus / "manifest.json").write_text('{"format_version": 1, "recipe": ')
    return corpus


@pytest.mark.parametrize("command", [
    ("preprocess", "inspect", "{corpus}"),
    ("ecgdist.pretrain", "configs/pretrain/ecgfounder_tiny.yaml", "data.corpus={corpus}", "run.dir={tmp}/run"),
    ("ecgdist.submit", "finetune", "configs/finetune/ptbxl_tiny.yaml", "data.corpus={corpus}", "run.dir={tmp}/s"),
])
def test_an_invalid_manifest_is_one_line(broken_manifest, tmp_path, command):
    out = run(*(part.format(corpus=broken_manifest, tmp=tmp_path) for part in command))
    assert out.returncode in (1, 2) and "Traceback" not in out.stderr
    assert f"{broken_manifest / 'manifest.json'} is not a valid manifest" in out.stderr


@pytest.mark.parametrize("command", [("preprocess", "inspect", "{missing}"), ("preprocess", "verify", "{missing}"),
                                     ("ecgdist.submit", "status", "{missing}")])
def test_a_missing_folder_is_one_line(tmp_path, command):
    missing = tmp_path / "nowhere"
    out = run(*(part.format(missing=missing) for part in command))
    assert out.returncode in (1, 2) and "Traceback" not in out.stderr and str(missing) in out.stderr


def test_undecodable_weights_are_named_and_never_unpickled(tmp_path, shared_data):
    torch.save({"state_dict": Net1D(widths=(16,), blocks=(1,)).state_dict(), "args": argparse.Namespace(lr=1)},
               tmp_path / "model.pth")
    out = run("ecgdist.predict", tmp_path / "model.pth", shared_data / "ptbxl-mini/records500/06000/06000_hr.hea")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "argparse.Namespace" in out.stderr and "weights_only=False" not in out.stderr


def test_a_full_disk_while_preprocessing_is_one_line(shared_data, tmp_path):
    import resource
    import signal

    def small_files():  # writes past 200 kB fail with EFBIG, as they would with ENOSPC on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    out = subprocess.run([sys.executable, "-m", "preprocess", "ptbxl", str(shared_data / "ptbxl-mini"),
                          str(tmp_path / "c"), "--quiet"], cwd=REPO, capture_output=True, text=True,
                         preexec_fn=small_files)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    assert "cannot write shard" in line and "too large" in line.lower()
    assert not list((tmp_path / "c").glob("*.tmp"))  # nothing half-written left
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_a_killed_worker_process_is_one_line_and_the_rerun_resumes(shared_data, tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-m", "preprocess", "ptbxl", str(shared_data / "ptbxl-mini"), str(out),
                             "--quiet", "--workers", "2", "--shard-size", "5"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # a worker of the pool: a child of the command's process
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == proc.pid]
        if children and list((out / "parts").glob("chunk-*.json")):
            os.kill(children[0], signal.SIGKILL)
            break
        time.sleep(0.01)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "a worker process died" in err and "Traceback" not in err
    done = subprocess.run([sys.executable, "-m", "preprocess", "ptbxl", str(shared_data / "ptbxl-mini"), str(out),
                           "--quiet", "--workers", "2", "--shard-size", "5"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _parent(pid: int) -> int | None:
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
