"""User errors end in one line naming the file and the problem, exit 1 or 2: no raw tracebacks."""

import argparse
import os
from pathlib import Path

import pytest
import torch
import forked
from conftest import REPO
from launch import ONE_THREAD, preprocess, pretrain, pretrain_args, python_m, start_preprocess

from ecgdist.models.net1d import Net1D


def run(module, *args):
    return python_m(module, *args, env=os.environ)


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
    out = preprocess("ptbxl", shared_data / "ptbxl-mini", tmp_path / "c", "--quiet", file_size_limit=200_000)
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
    proc = start_preprocess("ptbxl", shared_data / "ptbxl-mini", out, "--quiet", "--workers", "2", "--shard-size", "5",
                            output=tmp_path / "log")
    deadline = time.time() + 120
    while time.time() < deadline:  # a worker of the pool: a child of the command's process
        children = _children(proc.pid)
        if children and list((out / "parts").glob("chunk-*.json")):
            killed = children[0]
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait(timeout=300) == 1
    err = (tmp_path / "log").read_text()
    assert "a worker process died" in err and "Traceback" not in err
    done = preprocess("ptbxl", shared_data / "ptbxl-mini", out, "--quiet", "--workers", "2", "--shard-size", "5")
    assert done.returncode == 0, done.stderr


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == pid]


def _command_line(pid: int) -> bytes | None:
    """A forked child shares its parent's; a helper the process runs (a compiler, a tool) has its own."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def error_line(stderr):
    assert "Traceback" not in stderr, stderr[-3000:]
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    return line


@pytest.mark.deepspeed
def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_leaves_no_checkpoint(ptbxl_corpus, tmp_path):
    out = pretrain(ptbxl_corpus, tmp_path / "run", "train.steps=2", "checkpoint.save_every_steps=2",
                   "train.val_every_steps=100", file_size_limit=500_000)
    assert out.returncode == 1
    line = error_line(out.stderr)
    assert "cannot write checkpoint step-00000002" in line and "is the disk full?" in line
    assert line.endswith(f"({tmp_path / 'run' / 'checkpoints' / 'step-00000002'})")
    from ecgdist.pretrain.checkpoint import Checkpointer
    assert Checkpointer(tmp_path / "run" / "checkpoints").complete_tags() == []  # ignored at resume


def test_a_full_stage_dir_names_the_staged_file(ptbxl_corpus, tmp_path):
    out = pretrain(ptbxl_corpus, tmp_path / "run", "train.steps=1", f"data.stage_dir={tmp_path / 'stage'}",
                   file_size_limit=1_000_000)
    assert out.returncode == 1
    line = error_line(out.stderr)
    assert f"cannot stage {ptbxl_corpus / 'shard-000000.h5'}" in line and "ecgfounder_tiny.yaml" not in line
    assert line.endswith("/shard-000000.h5)") and str(tmp_path / "stage") in line
    assert not list((tmp_path / "stage").rglob("*.h5*"))  # nothing half-copied


@pytest.mark.deepspeed
def test_a_killed_loader_worker_is_one_line(ptbxl_corpus, tmp_path):
    import os
    import signal
    import time

    proc = forked.start(pretrain_args(ptbxl_corpus, tmp_path / "run", "train.steps=100000", "data.workers=1",
                                      "checkpoint.save_every_steps=0", "checkpoint.save_every_minutes=0"),
                        env=ONE_THREAD, cwd=REPO, stdout=tmp_path / "out", stderr=tmp_path / "err")
    deadline = time.time() + 120
    while time.time() < deadline:  # the loader's worker: a child forked from the training process
        children = [child for child in _children(proc.pid) if _command_line(child) == _command_line(proc.pid)]
        if children and (tmp_path / "run" / "config.yaml").exists():
            time.sleep(1)
            killed = children[0]
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.1)
    assert proc.wait(timeout=300) == 1
    line = error_line((tmp_path / "err").read_text())
    # torch words it "is killed by signal: Killed" or "exited unexpectedly", by which check saw it first
    assert "DataLoader worker (pid" in line and str(killed) in line


def test_a_truncated_index_file_is_one_line_naming_it(ptbxl_corpus, tmp_path):
    import shutil
    corpus = tmp_path / "c"
    shutil.copytree(ptbxl_corpus, corpus)
    group = corpus / "index" / "group.npy"
    group.write_bytes(group.read_bytes()[:-100])
    out = pretrain(corpus, tmp_path / "run", "train.steps=1")
    assert out.returncode == 1
    assert error_line(out.stderr) == f"error: index file {group}: does not match its checksum; rebuild the index " \
                                     f"with: python -m preprocess merge {corpus}"
