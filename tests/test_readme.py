"""The README's commands, read from README.md and run as printed.

The tour runs line by line in a fresh folder, with one substitution: its download step
is served by the PTB-XL subset in ../shared/data, and its torchrun line starts its ranks as
torchrun would, forked (the demo's test runs torchrun). The cluster section names resources and
site paths this machine lacks: its site paths map to fixtures made here (SITE below), the
preprocessing array runs at the sandbox's size, and the lines that ask for GPU nodes run
in their ``--dry-run`` form, which checks everything the job would and prints the sbatch
line. A README edit that breaks a command fails here. (Its ``python -m`` lines run forked from
a preloaded interpreter, tests/forked.py; ``make demo``'s test runs its steps in fresh ones.)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import matplotlib.image
import pytest
import forked
from conftest import REPO
from launch import run_ranks
from real_records import write_mimic_layout

from ecgdist.data.shards import read_manifest
from ecgdist.models.pretrained import read_weights



def readme_commands(heading: str) -> list[str]:
    """The shell commands of the first bash block under ``heading``, continuations joined."""
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", "", block)
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def run(command: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """A printed line, as bash runs it; a plain ``python -m`` line is forked from the preloaded
    interpreter instead (tests/forked.py: same module, same arguments, seconds sooner), and so is
    a ``torchrun --nproc_per_node N -m`` line, as N ranks with the environment torchrun gives them
    (``make demo``'s test runs torchrun itself)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # PATH: this venv's bin first (conftest), as after activate
    argv = shlex.split(command)
    plain = not set("|<>;&$`") & set(command)
    if plain and argv[:2] == ["python", "-m"]:
        done = forked.run(argv[1:], env=env, cwd=cwd, timeout=timeout)
    elif plain and argv[:2] == ["torchrun", "--nproc_per_node"] and argv[3] == "-m":
        done = forked_ranks(int(argv[2]), argv[3:], cwd, timeout)
    else:
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    assert done.returncode == 0, f"$ {command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def forked_ranks(world_size: int, args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """``python ARGS`` as the ranks of one run; its output is every rank's log, rank by rank."""
    logs = cwd / f"ranks-{len(list(cwd.glob('ranks-*')))}"
    logs.mkdir()
    codes = run_ranks(world_size, args, cwd, logs, timeout)
    output = "\n".join(path.read_text() for path in sorted(logs.glob("rank*.log")))
    return subprocess.CompletedProcess(args, next((code for code in codes if code), 0), output, output)


def check_tensorboard(command: str, cwd: Path, runs: list[str]) -> None:
    """Start the printed ``tensorboard`` command, ask its HTTP API for the runs it found, stop it."""
    server = subprocess.Popen(["bash", "-c", f"exec {command} --port 0 --bind_all"], cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        deadline = time.time() + 120
        while url is None and time.time() < deadline:
            match = re.search(r"(http://[^\s/]+:\d+)/", server.stdout.readline())
            url = match.group(1) if match else None
        assert url, "tensorboard never said where it serves"
        for _ in range(60):  # it scans the log folder in the background
            found = json.loads(urllib.request.urlopen(f"{url}/data/runs", timeout=10).read())
            if all(any(r.startswith(run) for r in found) for run in runs):
                break
            time.sleep(1)
        assert all(any(r.startswith(run) for r in found) for run in runs), found
    finally:
        server.send_signal(signal.SIGINT)  # as a user stops it
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # it once sat out SIGINT while the full suite ran: stop it anyway
            server.kill()
            server.wait(timeout=30)
        server.stdout.close()


def test_the_tour_runs_as_printed(shared_data, tmp_path):
    commands = readme_commands("A five-minute tour")
    assert commands[0] == "source .venv/bin/activate"  # stands for this interpreter's PATH, set in run()
    download = commands[1]
    assert download.startswith("python -m preprocess download ptbxl data/ptb-xl")
    shutil.copytree(shared_data / "ptbxl-mini", tmp_path / "data" / "ptb-xl")  # the subset, in PhysioNet's layout
    outputs = {}
    for command in commands[2:]:
        if command.startswith("tensorboard"):
            check_tensorboard(command, tmp_path, ["ecgfounder_tiny", "mtecg_tiny", "ptbxl_tiny_sweep"])
            continue
        outputs[command.split()[2] if command.startswith("python -m") else command.split()[0]] = run(command, tmp_path)
    # What the tour says each step makes.
    assert json.loads((tmp_path / "data/ptbxl_500hz/manifest.json").read_text())["records"] == 110
    assert "records" in outputs["preprocess"].stdout
    for run_name in ("ecgfounder_tiny", "mtecg_tiny"):
        config = (tmp_path / "runs" / run_name / "config.yaml").read_text()
        assert "data.exclude_from left out 35 records" in config
        probed = [json.loads(line)["step"] for line in (tmp_path / "runs" / run_name / "probe.jsonl").read_text().splitlines()]
        assert probed == [10, 20, 30]
    recomputed = json.loads(outputs["ecgdist.probe"].stdout.splitlines()[-1])
    assert recomputed["step"] == 20 and recomputed["max_difference"] <= 1e-6, recomputed
    exported = read_weights(tmp_path / "weights/net1d.safetensors")[1]  # safetensors: tensors and JSON
    assert exported["step"] == 30 and exported["provenance"]["excluded"] == 35
    results = (tmp_path / "runs/ptbxl_tiny_sweep/results.md").read_text()
    assert re.search(r"\| no overlap; saw \d+ training-fold records \|", results) and "OVERLAP" not in results
    assert "Paired gain" in results
    for task in ("rhythm", "superdiagnostic"):  # a two-task sweep: each task's rows, paired gain and plots
        assert results.count(f"| {task} |") == 3, results
        assert (tmp_path / f"runs/ptbxl_tiny_sweep/{task}_macro_auroc_vs_fraction.png").stat().st_size > 1000
    assert "4/4 completed" in outputs["ecgdist.submit"].stdout  # the last submit command: status
    assert re.search(r"00001_lr\.hea: \w+ \d\.\d\d", outputs["ecgdist.predict"].stdout)
    # The --explain picture (its panels and attributions: tests/finetune/test_predict_inputs.py).
    assert matplotlib.image.imread(tmp_path / "explain.png").shape[0] > 500
    shared = read_weights(tmp_path / "weights/superdiagnostic.safetensors")[1]  # the job's export, its row
    assert shared["result"]["task"] == "superdiagnostic" and shared["classes"] == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert "| superdiagnostic | post_training | 1 |" in shared["results_table"]


SITE = {  # the cluster section's site paths -> fixtures made by the test
    "/data/mimic-iv-ecg": "mimic-iv-ecg", "/data/shards/mimic": "shards/mimic", "/data/shards/ptbxl": "shards/ptbxl",
    "/data/ptb-xl": "ptb-xl", "/data/shards/ptbxl_ecgfounder": "shards/ptbxl_ecgfounder",
    "/weights/12_lead_ECGFounder.pth": "weights/ecgfounder.pth", "/runs": "runs"}
SANDBOX_SIZE = {"--array=0-63": "--array=0-1", "--cpus-per-task=16": "--cpus-per-task=1"}


@pytest.mark.slurm
@pytest.mark.deepspeed
def test_the_cluster_section_runs_on_the_sandbox_and_in_dry_run_form(slurm_cluster, shared_data, ptbxl_corpus,
                                                                     tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    from common import replicated_corpus

    from ecgdist.models.net1d import Net1D
    from ecgdist.models.pretrained import save_weights

    site = {path: str(tmp_path / local) for path, local in SITE.items()}
    (tmp_path / "slurm").symlink_to(REPO / "slurm")  # run where a user runs them: a checkout's root
    write_mimic_layout(shared_data, tmp_path / "mimic-iv-ecg")
    shutil.copytree(ptbxl_corpus, tmp_path / "shards/ptbxl")
    (tmp_path / "ptb-xl").symlink_to(shared_data / "ptbxl-mini")
    (tmp_path / "weights").mkdir()
    save_weights(Net1D(), tmp_path / "weights/ecgfounder.pth")
    commands = readme_commands("On a cluster")
    assert commands[0].startswith("sbatch --array=0-63")
    out = run(substitute(commands[0], site, SANDBOX_SIZE).replace("sbatch ", "sbatch --wait ", 1), tmp_path)
    assert "Submitted batch job" in out.stdout
    assert json.loads((tmp_path / "shards/mimic/manifest.json").read_text())["records"] == 3
    # Pre-training asks for 16 GPU ranks of 256 records: its dry run checks a corpus that fills them.
    shutil.rmtree(tmp_path / "shards/mimic")
    replicated_corpus(tmp_path / "shards/mimic", 4400, shard_size=1100)
    previous = ""
    for command in commands[1:]:
        command = substitute(command, site, {})
        if command.startswith("python -m ecgdist.submit pretrain"):
            if "--dry-run" not in command:  # the GPU job itself: its dry-run twin ran just before
                assert previous == command + " --dry-run"
                continue
            printed = run(command, tmp_path).stdout
            assert "--nodes=2 --ntasks-per-node=8 --cpus-per-task=12 --time=2880" in printed
            assert "--gpus-per-node=8 --partition=gpu --account=myproject" in printed
        elif command.startswith("python -m ecgdist.submit status"):
            run_dir = command.split()[-1]
            tiny_run(tmp_path, "ecgfounder_tiny", run_dir)
            assert "newest complete checkpoint: step-" in run(command, tmp_path).stdout
        elif command.startswith("python -m ecgdist.export"):
            tiny_run(tmp_path, "mtecg_tiny", command.split()[-2])
            run(command, tmp_path)
        elif command.startswith("python -m preprocess"):
            run(command, tmp_path)
            assert read_manifest(tmp_path / "shards/ptbxl_ecgfounder").recipe.filter == "ecgfounder"
        elif command.startswith("python -m ecgdist.submit finetune"):
            printed = run(command + " --dry-run", tmp_path).stdout  # GPU jobs: what would be submitted
            assert "144 jobs" in printed and "slurm_partition: gpu" in printed
        elif command.startswith("tensorboard"):
            check_tensorboard(command, tmp_path, ["ecgfounder", "mtecg_t"])
        else:
            raise AssertionError(f"the test does not know how to run: {command}")
        previous = command


def substitute(command: str, *tables: dict) -> str:
    for table in tables:
        for old, new in sorted(table.items(), key=lambda kv: -len(kv[0])):
            command = command.replace(old, new)
    return command


def tiny_run(cwd: Path, config: str, run_dir: str) -> None:
    """Stands for a pre-training run the cluster made: the tiny config, 4 steps, without folds 9-10."""
    corpus = cwd / "shards/ptbxl"
    run(f"python -m ecgdist.pretrain configs/pretrain/{config}.yaml data.corpus={corpus} data.exclude_from={corpus} "
        f"run.dir={run_dir} train.steps=4 checkpoint.save_every_steps=4 train.val_every_steps=4", cwd)


OWN_SITE = {"/data/hospital": "hospital", "/data/shards/hospital": "shards/hospital"}


def test_fine_tune_on_your_own_data_runs_as_printed(hospital_corpus, tmp_path, monkeypatch):
    """On a hospital-like export (the Georgia and Ningbo recordings under ward folders, the test's own
    labels table); the released weights come from a local Hub server; the sweep itself (GPU jobs)
    runs in its dry-run form, checking the folds, the weights (their recipe) and every task's splits."""
    from hub_server import HubServer

    from ecgdist.models.net1d import Net1D
    from ecgdist.models.pretrained import save_weights

    shutil.copytree(hospital_corpus.parent / "export", tmp_path / "hospital")
    shutil.copyfile(hospital_corpus.parent / "labels.csv", tmp_path / "hospital" / "labels.csv")
    (tmp_path / "configs").symlink_to(REPO / "configs")
    save_weights(Net1D(), tmp_path / "released.pth")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    commands = [substitute(c, {k: str(tmp_path / v) for k, v in OWN_SITE.items()}) for c in
                readme_commands("Fine-tune on your own data")]
    assert len(commands) == 5
    with HubServer(tmp_path / "hub") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.publish("PKUDigitalHealth/ECGFounder", "12_lead_ECGFounder.pth", tmp_path / "released.pth")
        assert "20 = 20 written + 0 rejected" in run(commands[0], tmp_path).stdout
        assert "made: 10 folds, seed 0, 20 records of 10 patients" in run(commands[1], tmp_path).stdout
        printed = run(commands[2], tmp_path).stdout
        assert "15 jobs, 15 would be submitted" in printed and "own-all-linear-f1-s0" in printed
        assert "own-all-linear_fit-f1-s0" in printed
        assert commands[3] == commands[2].replace("--dry-run", "--wait")  # the GPU sweep its dry run checked
        assert "20 embeddings of dimension 1024" in run(commands[4], tmp_path).stdout
    assert (tmp_path / "embeddings.h5").exists()
