"""``python -m ecgdist.submit finetune``: 1 task x 2 strategies locally and on real SLURM (one wave on the
sandbox's two 1-CPU nodes); the README tour's test runs 2 tasks x 2 strategies."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO
from launch import python_m, read_scalars
from slurm_jobs import wait_for_job

from ecgdist.config import ConfigError, FinetuneConfig, load_config
from ecgdist.finetune.sweep import submit_finetune

STRATEGIES = ("baseline", "post_training")


def sweep_config(corpus, sweep_dir, *overrides):
    return load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny.yaml",
                       [f"data.corpus={corpus}", f"run.dir={sweep_dir}", "finetune.epochs=2",
                        "finetune.probe_epochs=1", "finetune.bootstrap=20", *overrides])


def check_sweep_outputs(sweep_dir, tasks=("rhythm", "superdiagnostic")):
    with open(sweep_dir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["task"], r["strategy"]) for r in rows} == {(t, s) for t in tasks for s in STRATEGIES}
    assert all(r["n_jobs"] == "1" and r["fraction"] == "1.0" for r in rows)
    gains = {(r["task"], r["strategy"]): r["auroc_gain_pct"] for r in rows}
    assert gains[("rhythm", "post_training")] != "" and gains[("rhythm", "baseline")] == ""
    text = (sweep_dir / "results.md").read_text()
    assert text.count("| rhythm |") == 3  # two strategies, and their paired gain
    assert "| rhythm | 1 | 1 | " in text.split("Paired gain")[1] and "[90 % CI]" in text
    with open(sweep_dir / "paired.csv") as f:
        assert {r["task"] for r in csv.DictReader(f)} == set(tasks)
    assert all((sweep_dir / f"{task}_macro_auroc_vs_fraction.png").stat().st_size > 1000 for task in tasks)
    job = sweep_dir / "jobs" / "rhythm-post_training-f1-s0"
    assert "val/macro_auroc" in read_scalars(job / "tb")
    check_still_rising_note(sweep_dir, text)
    classes = json.loads((job / "classes.json").read_text())
    scores, targets = np.load(job / "test_scores.npy"), np.load(job / "test_targets.npy")
    assert scores.shape == targets.shape == (json.loads((job / "result.json").read_text())["records"]["test"], len(classes))
    assert ((scores >= 0) & (scores <= 1)).all()
    with open(sweep_dir / "per_class.csv") as f:  # the job's own per-class AUROC, class by class
        per_class = {r["class"]: r for r in csv.DictReader(f) if (r["task"], r["strategy"]) == ("rhythm", "post_training")}
    reported = json.loads((job / "result.json").read_text())["per_class_auroc"]
    assert list(per_class) == classes == list(reported)
    for name, auroc in reported.items():
        assert (per_class[name]["auroc_mean"] == "") if auroc is None else float(per_class[name]["auroc_mean"]) == \
            pytest.approx(auroc, abs=1e-9)
        assert int(per_class[name]["test_positives"]) == int(targets[:, classes.index(name)].sum())


def check_still_rising_note(sweep_dir, text):
    """A row is noted when its validation curve, as TensorBoard logged it, first peaks at its last epoch."""
    rising = []
    for result_file in sorted((sweep_dir / "jobs").glob("*/result.json")):
        result = json.loads(result_file.read_text())
        curve = [value for _, value in read_scalars(result_file.parent / "tb")["val/macro_auroc"]]
        assert result["epochs_trained"] == len(curve) == (3 if result["strategy"] == "post_training" else 2)
        if np.isfinite(curve).any() and int(np.nanargmax(curve)) + 1 == len(curve):
            rising.append(f"{result['task']} {result['strategy']} at fraction 1 (1 of 1 seeds)")
    assert ("Selected at the last epoch trained" in text) == bool(rising)
    assert all(row in text.split("Selected at the last epoch trained")[-1].split("\n\n")[0] for row in rising)


def test_local_sweep_builds_the_results_table_and_resubmission_skips_finished_jobs(ptbxl_corpus, tmp_path, capsys):
    """One task (the README tour's test reads a two-task table: both tasks' rows, paired gains, plots)."""
    config = sweep_config(ptbxl_corpus, tmp_path / "sweep", "sweep.tasks=[rhythm]")
    sweep_dir, jobs = submit_finetune(config, "local", wait=True)
    assert len(jobs) == 2
    check_sweep_outputs(sweep_dir, tasks=("rhythm",))
    _, again = submit_finetune(config, "local")
    assert again == [] and "2 jobs, 0 submitted" in capsys.readouterr().out


@pytest.mark.slurm
def test_sweep_on_the_local_slurm_cluster(slurm_cluster, ptbxl_corpus, tmp_path):
    sweep_dir, jobs = submit_finetune(sweep_config(ptbxl_corpus, tmp_path / "sweep", "sweep.tasks=[rhythm]"), "slurm",
                                      wait=True)
    assert len(jobs) == 2
    assert [wait_for_job(job.job_id, 120) for job in jobs] == ["COMPLETED"] * 2  # as SLURM's accounting sees it
    check_sweep_outputs(sweep_dir, tasks=("rhythm",))
    assert "2/2 completed" in submit_cli("status", sweep_dir).stdout


def test_bad_config_fails_before_anything_is_submitted(ptbxl_corpus, tmp_path):
    with pytest.raises(ConfigError, match="'data.corpus'"):
        submit_finetune(sweep_config(tmp_path / "nowhere", tmp_path / "s"), "local")
    with pytest.raises(ConfigError, match="'finetune.weights'"):
        submit_finetune(sweep_config(ptbxl_corpus, tmp_path / "s", "finetune.weights=/missing.pth"), "local")
    with pytest.raises(ConfigError, match="'sweep.tasks' is 'diagnosis'"):
        sweep_config(ptbxl_corpus, tmp_path / "s", "sweep.tasks=[diagnosis]")
    with pytest.raises(ConfigError, match="'finetune.weights' is empty, but strategy linear_fit evaluates pre-trained"):
        submit_finetune(sweep_config(ptbxl_corpus, tmp_path / "s", "sweep.strategies=[baseline,linear_fit]"), "local")
    assert not (tmp_path / "s" / "submitit").exists()
    out = subprocess.run([sys.executable, "-m", "ecgdist.submit", "finetune", "configs/finetune/ptbxl_tiny.yaml",
                          "finetune.epoch=3"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown config key 'finetune.epoch' (did you mean 'epochs'?)" in out.stderr


def test_local_submit_returns_while_jobs_run_and_resubmitting_never_starts_a_second_copy(ptbxl_corpus, tmp_path):
    """At most slurm.array_parallelism jobs at once, the rest queued: a detached runner starts them
    as slots free (sampled from the real processes), status shows the queued ones as pending."""
    from ecgdist.finetune.sweep_index import read_index, read_runner
    from ecgdist.processes import alive

    sweep = tmp_path / "sweep"
    args = ["finetune", "configs/finetune/ptbxl_tiny.yaml", f"data.corpus={ptbxl_corpus}", f"run.dir={sweep}",
            "sweep.tasks=[superdiagnostic]", "sweep.strategies=[baseline]", "sweep.seeds=[0,1]", "finetune.epochs=1",
            "slurm.array_parallelism=1", "--cluster", "local"]
    first = submit_cli(*args)
    assert first.returncode == 0 and "2 submitted; local queue: at most 1 at once" in first.stdout
    assert not list(sweep.glob("jobs/*/result.json"))  # returned at once; the jobs run on
    assert read_runner(sweep)["log"] == str(sweep / "local_runner.log")
    status = submit_cli("status", str(sweep)).stdout
    assert "pending" in status and "local runner: pid" in status
    again = submit_cli(*args)
    assert "0 submitted, 2 still queued or running (not submitted again)" in again.stdout
    assert len(read_index(sweep)) == 2 and "local runner" not in again.stdout  # the first runner serves both
    most, deadline = 0, time.time() + 600
    while len(list(sweep.glob("jobs/*/result.json"))) < 2 and time.time() < deadline:
        pids = [int(r["job_id"]) for r in read_index(sweep).values() if str(r.get("job_id") or "").isdigit()]
        most = max(most, sum(alive(pid) and not (sweep / "jobs" / name / "result.json").exists()
                             for pid, name in zip(pids, read_index(sweep))))
        time.sleep(0.2)
    assert "2/2 completed" in submit_cli("status", str(sweep)).stdout
    assert most == 1  # never two at once, and the sampling did see one running
    assert "started superdiagnostic-baseline-f1-s1" in (sweep / "local_runner.log").read_text()


def test_resubmitting_a_sweep_with_another_config_is_refused(ptbxl_corpus, tmp_path):
    sweep = tmp_path / "sweep"
    submit_finetune(sweep_config(ptbxl_corpus, sweep, "sweep.tasks=[rhythm]", "sweep.strategies=[baseline]",
                                 "finetune.epochs=1"), "debug", wait=True)
    with pytest.raises(ConfigError, match=r"another config \(finetune.epochs differ\)"):
        submit_finetune(sweep_config(ptbxl_corpus, sweep, "sweep.tasks=[rhythm]", "sweep.strategies=[baseline]",
                                     "finetune.epochs=2"), "local")
    # More tasks or seeds extend the sweep.
    _, jobs = submit_finetune(sweep_config(ptbxl_corpus, sweep, "sweep.tasks=[rhythm,superdiagnostic]",
                                           "sweep.strategies=[baseline]", "finetune.epochs=1"), "debug", wait=True)
    assert len(jobs) == 1


def test_a_failed_job_is_reported_by_status_and_wait_exits_non_zero(ptbxl_corpus, tmp_path):
    import shutil

    corpus, sweep = tmp_path / "corpus", tmp_path / "sweep"
    shutil.copytree(ptbxl_corpus, corpus)
    shard = corpus / "shard-000000.h5"
    data = bytearray(shard.read_bytes())
    data[-5000] ^= 0xFF  # same size: the submission's checks pass, the job's first read fails
    shard.write_bytes(bytes(data))
    out = submit_cli("finetune", "configs/finetune/ptbxl_tiny.yaml", f"data.corpus={corpus}", f"run.dir={sweep}",
                     "sweep.tasks=[superdiagnostic]", "sweep.strategies=[baseline]", "finetune.epochs=1",
                     "--cluster", "local", "--wait")
    assert out.returncode == 1 and "1 of 1 jobs failed" in out.stderr and "shard-000000.h5 is modified" in out.stderr
    status = submit_cli("status", str(sweep)).stdout
    assert "failed" in status and "shard-000000.h5 is modified" in status and "0/1 completed, 1 failed" in status


def submit_cli(*args):
    return python_m("ecgdist.submit", *args, env=os.environ)


def test_weights_replaced_behind_an_unchanged_path_are_refused(ptbxl_corpus, tmp_path):
    """A seed added later would otherwise train on the new file and average two models in one row."""
    import torch

    from ecgdist.finetune.job import FinetuneJob, JobSpec
    from ecgdist.finetune.weights import build_finetune_model
    from ecgdist.models.pretrained import save_weights

    weights = tmp_path / "net1d.pth"
    cfg = sweep_config(ptbxl_corpus, tmp_path / "sweep", f"finetune.weights={weights}", "sweep.tasks=[rhythm]",
                       "sweep.strategies=[baseline]", "sweep.seeds=[0]")
    torch.manual_seed(0)
    save_weights(build_finetune_model(cfg, "scratch", 5), weights)
    submit_finetune(cfg, "debug")  # recorded, not run: debug jobs run only when their result is asked for
    recorded = json.loads((tmp_path / "sweep" / "weights.json").read_text())
    assert list(recorded) == ["net1d"] and recorded["net1d"]["weights"] == str(weights)
    torch.manual_seed(1)
    save_weights(build_finetune_model(cfg, "scratch", 5), weights)
    more_seeds = sweep_config(ptbxl_corpus, tmp_path / "sweep", f"finetune.weights={weights}", "sweep.tasks=[rhythm]",
                              "sweep.strategies=[baseline]", "sweep.seeds=[0,1]")
    with pytest.raises(ConfigError, match=r"the weights of net1d \(.*net1d.pth: sha256 .* then, .* now\) changed"):
        submit_finetune(more_seeds, "debug")
    job = FinetuneJob(cfg, JobSpec("rhythm", "baseline", 1.0, 0), str(tmp_path / "sweep" / "jobs" / "rhythm-baseline-f1-s0"))
    with pytest.raises(ConfigError, match="changed since the sweep was submitted"):  # a queued job, started late
        job()


def test_a_local_sweep_runs_one_job_per_gpu_where_there_are_gpus(ptbxl_corpus, tmp_path, monkeypatch):
    """No GPU here: torch's device count is mocked (it stands in for the GPUs alone)."""
    import torch

    from ecgdist.finetune.local_runner import local_slots

    cfg = sweep_config(ptbxl_corpus, tmp_path, "slurm.array_parallelism=8")
    assert local_slots(cfg) == [None] * 8
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert local_slots(cfg) == [0, 1]
    assert local_slots(sweep_config(ptbxl_corpus, tmp_path, "slurm.array_parallelism=1")) == [0]


def test_the_shipped_benchmark_gives_both_strategies_the_same_epochs():
    """A gain must not come from more epochs or more selection candidates."""
    from ecgdist.finetune.header import protocol

    header = protocol(load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl.yaml"))
    assert "Epochs: baseline 35, post_training 35 (post_training: 5 probe + 30 full)" in header
    assert "finetune.match_epochs=true" in header
    assert "ecgfounder: adam lr 5e-05 weight decay 1e-05, plateau (patience 10), drop path 0 (post_training 0.1)" \
        in header
    assert "mtecg_t: adamw lr 0.0005 weight decay 0.05 layer decay 0.75, cosine after 5 warm-up epochs, drop path " \
        "0.1 (post_training 0.2)" in header
    with_scratch = protocol(load_config(FinetuneConfig, REPO / "configs/finetune/code15.yaml"))
    assert "mtecg_t: adamw lr 0.0005 weight decay 0.05 layer decay 0.75 (scratch: none), cosine" in with_scratch


def test_label_fraction_subsets_are_written_once_and_shared_by_every_strategy(ptbxl_corpus, tmp_path):
    """And a row whose training records hold no positive of a class says so."""
    cfg = sweep_config(ptbxl_corpus, tmp_path / "sweep", "sweep.tasks=[superdiagnostic]", "sweep.fractions=[0.2]",
                       "finetune.epochs=1", "finetune.probe_epochs=1")
    submit_finetune(cfg, "debug", wait=True)
    recorded = json.loads((tmp_path / "sweep" / "label_fractions.json").read_text())
    assert list(recorded) == ["superdiagnostic/fraction0.2/seed0"]
    subset = recorded["superdiagnostic/fraction0.2/seed0"]
    from ecgdist.tasks.benchmark import task_splits
    full = task_splits(ptbxl_corpus, "ptbxl", "superdiagnostic").splits
    assert set(subset) < set(full["train"].record_ids) and len(subset) >= round(0.2 * len(full["train"].record_ids))
    results = [json.loads(p.read_text()) for p in (tmp_path / "sweep" / "jobs").glob("*/result.json")]
    assert len(results) == 2 and {r["records"]["train"] for r in results} == {len(subset)}
    missing = results[0]["classes_without_training_positive"]
    assert missing == results[1]["classes_without_training_positive"]
    assert results[0]["recipe"]["finetune"]["epochs"] == 1 and results[0]["recipe"]["inputs"]["filter"] == "none"
    text = (tmp_path / "sweep" / "results.md").read_text()
    assert "Inputs: 500 Hz, 10 s, filter none, 12 leads, normalize ecgfounder, ptbxl version unknown." in text
    assert "Test records: ptbxl superdiagnostic 14." in text
    assert (f"No training positive in ptbxl superdiagnostic at fraction 0.2 (net1d): {', '.join(sorted(missing))}" in text) == bool(missing)
    # The record is the truth: a job reads its subset from it, whatever it would draw now.
    (tmp_path / "sweep" / "label_fractions.json").write_text(json.dumps({"superdiagnostic/fraction0.2/seed0": subset[:5]}))
    from ecgdist.finetune.job import JobSpec, recorded_training_records
    job_dir = tmp_path / "sweep" / "jobs" / "superdiagnostic-baseline-f0.2-s0"
    assert recorded_training_records(JobSpec("superdiagnostic", "baseline", 0.2, 0), job_dir) == subset[:5]
