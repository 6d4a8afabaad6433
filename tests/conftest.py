"""Shared fixtures: the real data in ../shared/data, the local SLURM cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if IN_CI:
            pytest.fail(f"real test data missing at {SHARED_DATA}")
        pytest.skip(f"real test data missing at {SHARED_DATA}")
    return SHARED_DATA


def slurm_available() -> bool:
    if shutil.which("sbatch") is None:
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The local cluster from slurm/local-cluster.sh; under CI=true its absence fails."""
    if not slurm_available():
        message = "no local SLURM cluster (bash slurm/local-cluster.sh start)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def build_corpus(source: str, input_dir: Path, output: Path, *options: str) -> Path:
    """Run the real preprocessing command line."""
    from launch import preprocess

    done = preprocess(source, input_dir, output, "--quiet", *options)
    assert done.returncode == 0, done.stderr[-3000:]
    return output


@pytest.fixture(scope="session")
def ptbxl_corpus(shared_data, tmp_path_factory) -> Path:
    """ptbxl-mini as a 500 Hz shard corpus, built once per test session."""
    return build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path_factory.mktemp("corpus") / "ptbxl")


@pytest.fixture(scope="session")
def ptbxl_ecgfounder_corpus(shared_data, tmp_path_factory) -> Path:
    """ptbxl-mini made as the released ECGFounder code prepares its input (its filter), built once."""
    return build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path_factory.mktemp("corpus") / "ptbxl_ecgfounder",
                        "--filter", "ecgfounder")


@pytest.fixture(scope="session")
def challenge_corpus(shared_data, tmp_path_factory) -> Path:
    """physionet2021-mini read as a plain WFDB folder: PTB-XL 6000-6009 under other ids (HR06000...)."""
    return build_corpus("wfdb", shared_data / "physionet2021-mini", tmp_path_factory.mktemp("corpus") / "challenge")


@pytest.fixture(scope="session")
def cinc_corpus(shared_data, tmp_path_factory) -> Path:
    """physionet2021-mini through the PhysioNet/CinC 2021 source (SNOMED labels, age, sex), built once."""
    return build_corpus("physionet2021", shared_data / "physionet2021-mini", tmp_path_factory.mktemp("corpus") / "cinc")


@pytest.fixture(scope="session")
def physionet_corpus(shared_data, tmp_path_factory) -> Path:
    """Georgia and Ningbo records of the 2021 Challenge: none of them is a PTB-XL record."""
    return build_corpus("physionet2021", shared_data / "physionet2021-other", tmp_path_factory.mktemp("corpus") / "other")
