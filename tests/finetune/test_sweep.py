"""``python -m ecgdist.submit finetune``: a 2 tasks x 2 strategies sweep, local and on real SLURM."""

import csv
import subprocess
import sys

import pytest
from conftest import REPO
from launch import read_scalars
from slurm_jobs import wait_for_job

from ecgdist.config import ConfigError, FinetuneConfig, load_config
from ecgdist.finetune.sweep import submit_finetune

EXPECTED_ROWS = {("rhythm", "baseline"), ("rhythm", "post_training"),
                 ("superdiagnostic", "baseline"), ("superdiagnostic", "post_training")}


def sweep_config(corpus, sweep_dir, *overrides):
    return load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny.yaml",
                       [f"data.corpus={corpus}", f"run.dir={sweep_dir}", "finetune.epochs=2",
                        "finetune.probe_epochs=1", "finetune.bootstrap=20", *overrides])


def check_sweep_outputs(sweep_dir):
    with open(sweep_dir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["task"], r["strategy"]) for r in rows} == EXPECTED_ROWS
    assert all(r["n_jobs"] == "1" and r["fraction"] == "1.0" for r in rows)
    gains = {(r["task"], r["strategy"]): r["auroc_gain_pct"] for r in rows}
    assert gains[("rhythm", "post_training")] != "" and gains[("rhythm", "baseline")] == ""
    text = (sweep_dir / "results.md").read_text()
    assert text.count("| rhythm |") == 3  # two strategies, and their paired gain
    assert "| rhythm | 1 | 1 | " in text.split("Paired gain")[1] and "[90 % CI]" in text
    with open(sweep_dir / "paired.csv") as f:
        assert {r["task"] for r in csv.DictReader(f)} == {"rhythm", "superdiagnostic"}
    assert (sweep_dir / "superdiagnostic_macro_auroc_vs_fraction.png").stat().st_size > 1000
    job = sweep_dir / "jobs" / "rhythm-post_training-f1-s0"
    assert "val/macro_auroc" in read_scalars(job / "tb")
    assert (job / "test_scores.npy").exists() and (job / "classes.json").exists()


def test_local_sweep_builds_the_results_table_and_resubmission_skips_finished_jobs(ptbxl_corpus, tmp_path, capsys):
    sweep_dir, jobs = submit_finetune(sweep_config(ptbxl_corpus, tmp_path / "sweep"), "local", wait=True)
    assert len(jobs) == 4
    check_sweep_outputs(sweep_dir)
    _, again = submit_finetune(sweep_config(ptbxl_corpus, tmp_path / "sweep"), "local")
    assert again == [] and "0 submitted (all finished)" in capsys.readouterr().out


@pytest.mark.slurm
def test_sweep_on_the_local_slurm_cluster(slurm_cluster, ptbxl_corpus, tmp_path):
    sweep_dir, jobs = submit_finetune(sweep_config(ptbxl_corpus, tmp_path / "sweep"), "slurm", wait=True)
    assert len(jobs) == 4
    assert [wait_for_job(job.job_id, 120) for job in jobs] == ["COMPLETED"] * 4  # as SLURM's accounting sees it
    check_sweep_outputs(sweep_dir)
    status = subprocess.run([sys.executable, "-m", "ecgdist.submit", "status", str(sweep_dir)],
                            capture_output=True, text=True, check=True).stdout
    assert "4/4 finished" in status


def test_bad_config_fails_before_anything_is_submitted(ptbxl_corpus, tmp_path):
    with pytest.raises(ConfigError, match="'data.corpus'"):
        submit_finetune(sweep_config(tmp_path / "nowhere", tmp_path / "s"), "local")
    with pytest.raises(ConfigError, match="'finetune.weights'"):
        submit_finetune(sweep_config(ptbxl_corpus, tmp_path / "s", "finetune.weights=/missing.pth"), "local")
    with pytest.raises(ConfigError, match="'sweep.tasks' is 'diagnosis'"):
        sweep_config(ptbxl_corpus, tmp_path / "s", "sweep.tasks=[diagnosis]")
    assert not (tmp_path / "s" / "submitit").exists()
    out = subprocess.run([sys.executable, "-m", "ecgdist.submit", "finetune", "configs/finetune/ptbxl_tiny.yaml",
                          "finetune.epoch=3"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown config key 'finetune.epoch' (did you mean 'epochs'?)" in out.stderr
