"""Shared fixtures: the real data in ../shared/data, the local SLURM cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
# Every process the tests start finds this environment's tools first (the README's ``python``, ``torchrun``
# and ``tensorboard`` lines, SLURM jobs' interpreters), as an activated venv does.
VENV_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != VENV_BIN:
    os.environ["PATH"] = os.pathsep.join([VENV_BIN, os.environ.get("PATH", "")])


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


def split(corpus: Path, seed: int = 0) -> Path:
    """``python -m preprocess split CORPUS --seed S``, run as users do."""
    from launch import preprocess

    done = preprocess("split", corpus, "--seed", seed)
    assert done.returncode == 0, done.stderr[-3000:]
    return corpus


@pytest.fixture(scope="session")
def split_physionet_corpus(physionet_corpus, tmp_path_factory) -> Path:
    """The Georgia and Ningbo corpus with made folds (a copy: the unsplit one stays unsplit)."""
    copy = tmp_path_factory.mktemp("corpus") / "other_split"
    shutil.copytree(physionet_corpus, copy)
    return split(copy)


@pytest.fixture(scope="session")
def code15_corpus(shared_data, tmp_path_factory) -> Path:
    """code15-mini (10 exams of 10 patients) as a shard corpus with made folds."""
    return split(build_corpus("code15", shared_data / "code15-mini", tmp_path_factory.mktemp("corpus") / "code15"))


# The PTB-XL statements that are CODE-test's six abnormalities (PTB-XL's own names for them).
CODE_TEST_FROM_PTBXL = {"1AVB": "1dAVb", "CRBBB": "RBBB", "CLBBB": "LBBB", "SBRAD": "SB", "AFIB": "AF", "STACH": "ST"}


def write_code_test_layout(records: list[tuple[np.ndarray, dict[str, int], tuple[float, str]]], folder: Path) -> Path:
    """CODE-test's published layout (ecg_tracings.hdf5, attributes.csv, annotations/gold_standard.csv)
    of (tracing at 400 Hz (samples, 12), gold standard {abnormality: 0/1}, (age, sex)) per exam,
    each tracing zero-padded on both sides to 4096 samples as CODE-test's are."""
    import h5py

    columns = ["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]
    tracings = np.zeros((len(records), 4096, 12), dtype=np.float32)
    for k, (tracing, _, _) in enumerate(records):
        start = (4096 - len(tracing)) // 2
        tracings[k, start:start + len(tracing)] = tracing
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "ecg_tracings.hdf5", "w") as f:
        f["tracings"] = tracings
    (folder / "annotations" / "gold_standard.csv").write_text(
        ",".join(columns) + "\n" + "".join(",".join(str(gold.get(c, 0)) for c in columns) + "\n" for _, gold, _ in records))
    (folder / "attributes.csv").write_text("age,sex\n" + "".join(f"{age:g},{sex}\n" for _, _, (age, sex) in records))
    return folder


def code15_as_code_test(code15: Path, folder: Path) -> Path:
    """code15-mini's exams written in CODE-test's layout, their tracings unchanged (4096 samples, padding
    and all) and their CODE-15 % labels as the gold standard: the same records through both readers."""
    import csv

    import h5py

    with h5py.File(code15 / "exams_part0.hdf5", "r") as f:
        tracing = dict(zip(f["exam_id"][:].tolist(), f["tracings"][:]))
    with open(code15 / "exams.csv", newline="") as f:
        exams = list(csv.DictReader(f))
    records = [(tracing[int(e["exam_id"])], {c: int(e[c] == "True") for c in ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")},
                (float(e["age"]), "M" if e["is_male"] == "True" else "F")) for e in exams]
    return write_code_test_layout(records, folder)


@pytest.fixture(scope="session")
def code_test_dir(shared_data, tmp_path_factory) -> Path:
    """An external test set in CODE-test's layout made of ptbxl-mini's 110 real records (500 Hz where its
    file is here, else 100 Hz; resampled to 400 Hz) with their PTB-XL statements as the six abnormalities:
    exams no CODE-15 % corpus holds."""
    import ast
    import csv

    from scipy.signal import resample_poly

    from ecgdist.data.wfdb_io import read_wfdb

    root = shared_data / "ptbxl-mini"
    records = []
    with open(root / "ptbxl_database.csv", newline="") as f:
        for row in csv.DictReader(f):
            codes = ast.literal_eval(row["scp_codes"])
            high = (root / row["filename_hr"]).with_suffix(".hea").exists()  # else only its 100 Hz file is here
            raw = read_wfdb(root / row["filename_hr" if high else "filename_lr"])
            gold = {name: int(code in codes) for code, name in CODE_TEST_FROM_PTBXL.items()}
            records.append((resample_poly(raw.signal, 4, 5 if high else 1, axis=0), gold,
                            (float(row["age"] or "nan"), "M" if row["sex"] == "0" else "F")))
    return write_code_test_layout(records, tmp_path_factory.mktemp("code_test"))


@pytest.fixture(scope="session")
def code_test_corpus(code_test_dir, tmp_path_factory) -> Path:
    """The CODE-test-layout folder through ``python -m preprocess code-test`` (no folds: an external test set)."""
    return build_corpus("code-test", code_test_dir, tmp_path_factory.mktemp("corpus") / "code_test")


HOSPITAL_CODES = {"427084000": "STACH", "426177001": "SBRAD", "284470004": "PAC", "164934002": "TWAVE"}


@pytest.fixture(scope="session")
def hospital_corpus(shared_data, tmp_path_factory) -> Path:
    """A hospital's WFDB export with its own labels table: the 20 Georgia and Ningbo recordings under
    ward folders, the hospital's own codes (from their SNOMED-CT Dx: STACH, SBRAD, PAC, TWAVE, else
    OTHER), two recordings per patient; made folds."""
    root = tmp_path_factory.mktemp("hospital")
    rows = ["record,labels,age,sex,patient_id"]
    for k, header in enumerate(sorted((shared_data / "physionet2021-other").glob("*.hea"))):
        ward = root / "export" / ("ward_a" if k < 10 else "ward_b")
        ward.mkdir(parents=True, exist_ok=True)
        for suffix in (".hea", ".mat"):
            shutil.copyfile(header.with_suffix(suffix), ward / header.with_suffix(suffix).name)
        dx = next(line for line in header.read_text().splitlines() if line.startswith("# Dx:")).split(":")[1]
        codes = sorted({HOSPITAL_CODES.get(code.strip(), "OTHER") for code in dx.split(",")})
        rows.append(f"{ward.name}/{header.stem},{';'.join(codes)},60,{'MF'[k % 2]},patient{k // 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return split(build_corpus("wfdb", root / "export", root / "corpus", "--labels", root / "labels.csv"))
