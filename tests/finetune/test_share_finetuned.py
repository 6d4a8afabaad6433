"""A fine-tuned model shared: ``python -m ecgdist.export JOB_DIR OUT --onnx --push`` writes the job's
selected model with its results-table row, and what comes back from the Hub predicts as the job's model."""

import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch
from launch import python_m

from ecgdist.config import FinetuneConfig, load_config
from ecgdist.export import main as export_main
from ecgdist.finetune.export import exported_model
from ecgdist.finetune.job import JobSpec, run_job
from ecgdist.finetune.predict import Classifier
from ecgdist.finetune.results import markdown_table, read_results, summarise
from ecgdist.finetune.weights import build_finetune_model
from ecgdist.models.pretrained import read_weights, save_weights

RECORD = "records100/00000/00009_lr"  # PTB-XL record 9, fold 10 (a test record)


@pytest.fixture(scope="module")
def sweep(ptbxl_corpus, tmp_path_factory):
    """Two seeds of one tiny baseline fine-tune, as a sweep lays its jobs out (SWEEP/jobs/NAME)."""
    folder = tmp_path_factory.mktemp("share")
    cfg = load_config(FinetuneConfig, "configs/finetune/ptbxl_tiny.yaml",
                      [f"data.corpus={ptbxl_corpus}", "finetune.epochs=2", "finetune.bootstrap=50"])
    torch.manual_seed(0)
    save_weights(build_finetune_model(cfg, "scratch", 150), folder / "start.pth")
    cfg = load_config(FinetuneConfig, "configs/finetune/ptbxl_tiny.yaml",
                      [f"data.corpus={ptbxl_corpus}", "finetune.epochs=2", "finetune.bootstrap=50",
                       f"finetune.weights={folder / 'start.pth'}"])
    for seed in (0, 1):
        spec = JobSpec("superdiagnostic", "baseline", 1.0, seed)
        run_job(cfg, spec, folder / "sweep" / "jobs" / spec.name)
    return folder / "sweep"


def test_a_fine_tuned_model_pushed_with_its_table_row_predicts_as_the_job_did(sweep, shared_data, tmp_path,
                                                                              monkeypatch):
    import yaml
    from hub_server import hub_for_pushes

    job_dir = sweep / "jobs" / "superdiagnostic-baseline-f1-s0"
    record = shared_data / "ptbxl-mini" / RECORD
    with hub_for_pushes(tmp_path, monkeypatch):
        out = tmp_path / "net1d-superdiagnostic.safetensors"
        done = python_m("ecgdist.export", job_dir, out, "--onnx", tmp_path / "net1d-superdiagnostic.onnx",
                        "--push", "lab/net1d-superdiagnostic", env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr[-3000:]
        assert "exported fine-tune job superdiagnostic-baseline-f1-s0 (test macro AUROC" in done.stdout
        # The Hub's copy, read by reference in a fresh interpreter (huggingface_hub fixes its cache at import).
        fetched = subprocess.run([sys.executable, "-m", "ecgdist.predict", "hf://lab/net1d-superdiagnostic/"
                                  f"{out.name}", str(record), "--json"], capture_output=True, text=True, timeout=300,
                                 env=dict(os.environ))
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    expected, _ = Classifier(job_dir / "model.pth").record(record)
    got = json.loads(fetched.stdout.splitlines()[-1])["probabilities"]
    classes = json.loads((job_dir / "classes.json").read_text())
    assert sorted(got) == sorted(classes) and len(classes) == 5
    assert np.allclose([got[c] for c in classes], expected, atol=1e-6)

    card = (tmp_path / "hub" / "lab" / "net1d-superdiagnostic" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "ecgdist" and "fine-tuned" in front["tags"]
    jobs = read_results(sweep)
    own_row = markdown_table(summarise([j for j in jobs if j["seed"] == 0], 50)).splitlines()[-1]
    sweep_row = markdown_table(summarise(jobs, 50)).splitlines()[-1]
    assert own_row != sweep_row  # two seeds: another mean, an sd
    result = json.loads((job_dir / "result.json").read_text())
    for fact in ("This model (seed 0)", own_row, "Its sweep's row (2 seeds)", sweep_row,
                 f"epoch {result['selected_epoch']} of {result['epochs_trained']}, validation macro AUROC {result['val_macro_auroc']:.4f}",
                 f"{result['records']['test']:,} test records", "**unknown**", "PTB-XL 1.0.3: CC BY 4.0",
                 f"python -m ecgdist.predict hf://lab/net1d-superdiagnostic/{out.name} RECORD.hea"):
        assert fact in card, fact
    # By class, as the job reported it, beside the class's positives among the test records it scored
    targets = np.load(job_dir / "test_targets.npy")
    for k, name in enumerate(classes):
        auroc = result["per_class_auroc"][name]
        assert f"| {name} | {int(targets[:, k].sum())} | {'' if auroc is None else f'{auroc:.3f}'} | " in card, name
    _, extra = read_weights(out)
    assert extra["result"]["macro_auroc"] == result["macro_auroc"] and extra["classes"] == classes
    # What the weights trained on travels with them, for the next fine-tune's check (start.pth lists nothing).
    listed = read_weights(job_dir / "model.pth")[1]["provenance"]
    assert torch.equal(extra["provenance"]["fingerprints"], listed["fingerprints"]) and not extra["provenance"]["complete"]
    assert f"content fingerprints of the {len(listed['fingerprints']):,} records" in card
    assert "the list is incomplete: the weights it was fine-tuned from carry no usable record" in card


def test_the_onnx_file_of_a_fine_tuned_model_gives_its_logits(sweep, ptbxl_corpus, tmp_path):
    from ecgdist.data.dataset import ShardDataset

    out, onnx = tmp_path / "model.pth", tmp_path / "model.onnx"
    assert export_main([str(sweep / "jobs" / "superdiagnostic-baseline-f1-s1"), str(out), "--onnx", str(onnx)]) == 0
    model, cfg, _ = exported_model(out)
    data = ShardDataset(ptbxl_corpus, transform=Classifier(out).transform)
    signal = data.__getitems__(list(range(4)))["signal"].float()
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(signal).numpy()
    got = session.run(None, {"signal": signal.numpy()})[0]
    assert got.shape == (4, 5) and np.abs(got - expected).max() <= 1e-4


def test_a_fine_tune_job_has_one_model_to_export(sweep, tmp_path, capsys):
    assert export_main([str(sweep / "jobs" / "superdiagnostic-baseline-f1-s0"), str(tmp_path / "m.pth"), "--best"]) == 2
    assert "is a fine-tune job: it holds one model, the one fold 9 selected" in capsys.readouterr().err
    assert not (tmp_path / "m.pth").exists()
