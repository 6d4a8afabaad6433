"""``python -m ecgdist.submit pretrain`` and ``status`` on a pre-training run (a real submission and its
status: test_pretrain_slurm.py, one per ZeRO stage)."""

import pytest
from conftest import REPO
from launch import ONE_THREAD, python_m

from ecgdist.config import PretrainConfig, load_config
from ecgdist.pretrain.submission import sbatch_command

TINY = "configs/pretrain/ecgfounder_tiny.yaml"


def submit(*args, env=None):
    return python_m("ecgdist.submit", *args, env={**ONE_THREAD, **(env or {})})


def test_dry_run_prints_the_sbatch_line_from_the_slurm_section_and_submits_nothing(ptbxl_corpus, tmp_path):
    run = tmp_path / "run"
    out = submit("pretrain", TINY, f"data.corpus={ptbxl_corpus}", f"run.dir={run}", "slurm.nodes=2",
                 "slurm.tasks_per_node=3", "slurm.gpus_per_node=3", "slurm.cpus_per_task=4", "slurm.time_minutes=90",
                 "slurm.partition=gpu", "slurm.account=ecg", "slurm.mem_gb=64", "slurm.extra_flags=[--qos=high,--exclusive]",
                 "--dry-run")
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1].split()
    flags = line[1:line.index(str(REPO / "slurm" / "pretrain.sh"))]
    assert flags == ["--nodes=2", "--ntasks-per-node=3", "--cpus-per-task=4", "--time=90", "--signal=USR1@120",
                     "--gpus-per-node=3", "--partition=gpu", "--account=ecg", "--mem=64G", "--qos=high", "--exclusive",
                     f"--output={run.resolve()}/slurm-%j.out"]
    assert f"run.dir={run}" in line and line[line.index(str(REPO / "slurm" / "pretrain.sh")) + 1] == str(REPO / TINY)
    assert "on 6 ranks (2 nodes x 3)" in out.stdout  # checked for the job's world size
    assert not run.exists()


@pytest.mark.parametrize("override, key", [
    ("slurm.nodez=2", "slurm.nodez"),
    ("slurm.extra_flags=[qos]", "slurm.extra_flags"),
    ("train.micro_batch=64", "train.micro_batch"),
    ("deepspeed=configs/deepspeed/zero9.json", "deepspeed"),
    ("data.corpus=/nonexistent", "data.corpus"),
])
def test_a_bad_config_or_corpus_fails_before_submission_naming_the_key(ptbxl_corpus, tmp_path, override, key):
    run = tmp_path / "run"
    out = submit("pretrain", TINY, f"data.corpus={ptbxl_corpus}", f"run.dir={run}", "slurm.nodes=2", override)
    assert out.returncode == 2
    assert key in out.stderr and "Traceback" not in out.stderr
    assert not run.exists()


def test_sbatch_line_keeps_overrides_in_order():
    cfg = load_config(PretrainConfig, REPO / TINY, ["run.dir=/r"])
    command = sbatch_command(cfg, TINY, ["run.dir=/r", "train.steps=5"], wait=True)
    assert command[-2:] == ["run.dir=/r", "train.steps=5"] and "--wait" in command


def test_status_of_a_folder_that_is_no_run_says_so(tmp_path):
    out = submit("status", str(tmp_path))
    assert out.returncode == 2 and "no config.yaml" in out.stderr
