"""``sbatch -N 2 slurm/pretrain.sh`` on the local two-node cluster: stages, requeue, crashes."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from launch import ONE_THREAD, python_m, read_image_tags, read_scalars
from slurm_jobs import release_once_requeued, sacct_state, sbatch, wait_for_job

from ecgdist.pretrain.deepspeed_adapter import DEPRECATED_COLLECTIVES
from ecgdist.pretrain.submission import JOBS_FILE

pytestmark = [pytest.mark.slurm, pytest.mark.deepspeed]
CONFIGS = {"net1d": "configs/pretrain/ecgfounder_tiny.yaml", "mtecg": "configs/pretrain/mtecg_tiny.yaml"}


def submit(tmp_path, config, run_dir, *overrides, nodes=2):
    env = {**os.environ, "ECGDIST_PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return sbatch("-N", str(nodes), "--ntasks-per-node=1", "-o", str(tmp_path / "job-%j.out"),
                  str(REPO / "slurm/pretrain.sh"), config, f"run.dir={run_dir}", *overrides, cwd=tmp_path, env=env)


def wait_until(predicate, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(what)


# One two-node job per ZeRO stage, the families taking turns (both run ZeRO 2 in the demo, Net1D ZeRO 3 in
# test_pretrain's export test), each submitted as users do (``python -m ecgdist.submit pretrain``, which runs
# ``sbatch slurm/pretrain.sh``) and read back by ``status``.
@pytest.mark.parametrize("stage, model", [(1, "net1d"), (2, "mtecg"), (3, "mtecg")])
def test_two_node_job_trains_with_each_zero_stage(slurm_cluster, ptbxl_corpus, tmp_path, model, stage):
    run = tmp_path / "run"
    done = python_m("ecgdist.submit", "pretrain", CONFIGS[model], f"data.corpus={ptbxl_corpus}", f"run.dir={run}",
                    "train.steps=10", f"deepspeed=configs/deepspeed/zero{stage}.json", "slurm.nodes=2",
                    "slurm.time_minutes=20", "--wait", env={**ONE_THREAD, "ECGDIST_PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = json.loads((run / JOBS_FILE).read_text())
    job = jobs[0]["job_id"]
    assert [j["event"] for j in jobs] == ["submitted", "started"] and jobs[1]["job_id"] == job
    log = (run / f"slurm-{job}.out").read_text()
    assert "2 tasks on n[1-2], master n1" in log
    assert not [name for name in DEPRECATED_COLLECTIVES if f"`torch.distributed.{name}` is deprecated" in log]
    scalars = read_scalars(run / "tb")
    loss = [v for _, v in scalars["train/loss"]]
    assert loss[-1] < loss[0]
    assert {"train/lr", "train/grad_norm", "train/samples_per_s", "val/loss"} <= set(scalars)
    if model == "mtecg":
        assert "val/reconstruction" in read_image_tags(run / "tb")
    status = python_m("ecgdist.submit", "status", run)
    assert status.returncode == 0, status.stderr
    for line in (f"SLURM job {job}: COMPLETED, 0 restarts", "newest complete checkpoint: step-00000010",
                 "last logged: step 10, loss"):
        assert line in status.stdout, status.stdout


def training_job(tmp_path, corpus, run, steps, *overrides):
    """A Net1D job submitted to the sandbox (saving only when stopped or done, logging every step),
    once its log says it has made a step."""
    job = submit(tmp_path, CONFIGS["net1d"], run, f"data.corpus={corpus}", f"train.steps={steps}",
                 "checkpoint.save_every_steps=0", "train.log_every_steps=1", *overrides)
    out = tmp_path / f"job-{job}.out"
    wait_until(lambda: out.exists() and f"step 1/{steps} " in out.read_text(), 300, "training never started")
    return job


def test_signalled_job_saves_requeues_and_finishes_all_steps(slurm_cluster, ptbxl_corpus, tmp_path):
    run = tmp_path / "run"
    job = training_job(tmp_path, ptbxl_corpus, run, 100)
    subprocess.run(["scancel", "--signal=USR1", job], check=True)
    release_once_requeued(job)
    assert wait_for_job(job, 900) == "COMPLETED"
    out = (tmp_path / f"job-{job}.out").read_text()
    for line in ("received SIGUSR1", "requeueing SLURM job", "restart 1", "resumed from step-"):
        assert line in out, out
    saved = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    assert saved[-1] == "step-00000100" and len(saved) == 2  # the preemption save and the final one


def test_a_crashed_rank_ends_the_job_quickly(slurm_cluster, ptbxl_corpus, tmp_path):
    run = tmp_path / "run"
    job = training_job(tmp_path, ptbxl_corpus, run, 100000)

    def rank1_pid():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_text()
                env = Path(f"/proc/{pid}/environ").read_text().split("\0")
            except OSError:
                continue
            if "ecgdist.pretrain" in cmd and str(run) in cmd and "SLURM_PROCID=1" in env:
                return int(pid)

    pid = rank1_pid()
    assert pid is not None
    killed = time.time()
    os.kill(pid, 9)
    assert wait_for_job(job, 180) == "FAILED"
    assert time.time() - killed < 120
    assert sacct_state(job) == "FAILED"


def test_scancel_saves_and_stops_without_a_requeue(slurm_cluster, ptbxl_corpus, tmp_path):
    """SLURM's own requeue sends the same SIGTERM: the job never requeues itself on top of it (that
    outcome's exit code and the absent requeue call: test_loop_rules.py)."""
    run = tmp_path / "run"
    job = training_job(tmp_path, ptbxl_corpus, run, 100000)
    subprocess.run(["scancel", job], check=True)  # SIGTERM to every rank, as when SLURM preempts or requeues
    assert wait_for_job(job, 300) == "CANCELLED"
    out = (tmp_path / f"job-{job}.out").read_text()
    assert "received SIGTERM" in out and "stopping without a requeue" in out, out[-3000:]
    assert "requeueing SLURM job" not in out and "restart 1" not in out
    saved = [p.name for p in (run / "checkpoints").glob("step-*") if (p / "complete.json").exists()]
    assert len(saved) == 1  # the save made on the way out
