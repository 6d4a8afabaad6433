"""``make demo``'s path end to end (scaled down), and the SIMULATED mark on every output."""

import json
import os
import re
import subprocess
import sys

from conftest import REPO, build_corpus
from launch import export, preprocess, pretrain, python_m, read_image_tags, read_scalars

from ecgdist.data.shards import read_manifest
from ecgdist.pretrain.probe import HISTORY_FILE, read_history

AUROC = "probe/ptbxl/superdiagnostic/auroc"


def test_demo_runs_the_whole_pipeline_on_ptbxl_mini(shared_data, tmp_path):
    """``make demo`` as on a fresh machine: local processes (the same scripts on the SLURM sandbox:
    test_readme's cluster section and test_sweep's SLURM sweep); its contract: the table for both
    backbones and strategies, no overlap with the evaluation folds, the probe values, predictions."""
    env = {**os.environ, "DEMO_DATA": str(shared_data / "ptbxl-mini"), "DEMO_DIR": str(tmp_path),
           "DEMO_STEPS": "12", "DEMO_EPOCHS": "1", "OMP_NUM_THREADS": "1", "DEMO_SLURM": "0"}
    out = subprocess.run([sys.executable, "-m", "ecgdist.demo"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=1500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert all(part in out.stdout for part in ("-m torch.distributed.run --nproc_per_node 2", "--cluster local"))
    table = (tmp_path / "runs/finetune/results.md").read_text()
    for backbone in ("net1d", "mtecg"):  # both foundation models, both strategies, and their paired gain
        for strategy in ("baseline", "post_training"):
            assert f"| {backbone} | ptbxl | superdiagnostic | {strategy} | 1 |" in table
        assert f"| {backbone} | ptbxl | superdiagnostic | 1 | 1 |" in table.split("Paired gain")[1]
    # Pre-trained without folds 9 and 10 (checked), on the training folds the fine-tune reads again.
    assert re.search(r"\| no overlap; saw \d+ training-fold records \|", table) and "OVERLAP" not in table
    assert "SIMULATED" not in table
    resolved = (tmp_path / "runs/finetune/config.yaml").read_text()  # DEMO_EPOCHS reached the sweep
    assert "\n  epochs: 1\n" in resolved and "\n  probe_epochs: 1\n" in resolved
    for run in ("net1d", "mtecg"):
        scalars = read_scalars(tmp_path / "runs" / run / "tb")
        assert "train/loss" in scalars
        # Probed halfway and at the end; the summary shows what probe.jsonl and TensorBoard hold.
        history = read_history(tmp_path / "runs" / run / HISTORY_FILE)
        assert [e["step"] for e in history] == [step for step, _ in scalars[AUROC]] == [6, 12]
        for e in history:
            assert f"   {run} step {e['step']}: superdiagnostic/auroc {e['values'][AUROC]:.3f}, rhythm/auroc " \
                in out.stdout
        assert "data.exclude_from left out 35 records" in (tmp_path / "runs" / run / "config.yaml").read_text()
    assert "val/reconstruction" in read_image_tags(tmp_path / "runs/mtecg/tb")
    predictions = [line for line in out.stdout.splitlines() if "_lr.hea:" in line or "_hr.hea:" in line]
    classes = json.loads((tmp_path / "runs/finetune/jobs/net1d-superdiagnostic-post_training-f1-s0/classes.json")
                         .read_text())  # each record gets its top class of the task, with a score
    assert len(predictions) == 2
    assert all(re.search(rf": ({'|'.join(classes)}) \d\.\d\d", line) for line in predictions), predictions
    assert "tensorboard --logdir" in out.stdout


def test_a_simulated_corpus_is_marked_in_every_output(tmp_path):
    sim = tmp_path / "sim"
    assert preprocess("simulate", "ptbxl", sim, "--records", "120").returncode == 0
    corpus = build_corpus("ptbxl", sim, tmp_path / "corpus")
    assert read_manifest(corpus).extra == {"simulated": True}
    inspect = preprocess("inspect", corpus).stdout
    assert "SIMULATED" in inspect.splitlines()[0]
    sweep = tmp_path / "sweep"
    done = python_m("ecgdist.submit", "finetune", "configs/finetune/ptbxl_tiny.yaml", f"data.corpus={corpus}",
                    f"run.dir={sweep}", "sweep.tasks=[superdiagnostic]", "sweep.strategies=[baseline]",
                    "finetune.epochs=1", "--cluster", "debug", "--wait")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (sweep / "results.md").read_text().startswith("**SIMULATED ECGs")
    assert json.loads((sweep / "jobs/superdiagnostic-baseline-f1-s0/result.json").read_text())["simulated"] is True
    run = tmp_path / "run"
    assert pretrain(corpus, run, "train.steps=2", "checkpoint.save_every_steps=2").returncode == 0
    assert export(run, tmp_path / "w" / "net1d.pth")["simulated"] is True
    model = sweep / "jobs/superdiagnostic-baseline-f1-s0/model.pth"
    record = next(sim.rglob("*.hea"))
    assert python_m("ecgdist.predict", model, record).stdout.startswith("# SIMULATED")
    as_json = python_m("ecgdist.predict", model, record, "--json").stdout
    assert json.loads(as_json.splitlines()[-1])["simulated"] is True
