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
