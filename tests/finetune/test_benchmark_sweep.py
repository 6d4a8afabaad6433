"""One sweep over three benchmarks beyond PTB-XL (PhysioNet 2021 sources, CODE-15 %, a hospital's WFDB
export with its labels table), the linear evaluation beside fine-tuning, one table with a benchmark column.

The fixtures are tiny (10 to 20 records, 1 or 2 per validation and test fold): most classes are
unscorable in their test splits, so these tests check the mechanism, not the metrics."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from launch import python_m

from ecgdist.config import FinetuneConfig, load_config
from ecgdist.finetune.weights import build_finetune_model
from ecgdist.models.pretrained import read_weights, save_weights

TINY = "configs/finetune/ptbxl_tiny.yaml"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Released-format weights of a tiny Net1D (random: the mechanics, not the numbers, are tested)."""
    torch.manual_seed(0)
    model = build_finetune_model(load_config(FinetuneConfig, TINY), "scratch", 150)
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    save_weights(model, path)
    return path


def benchmarks_config(path, sweep_dir, weights, physionet, code15, hospital):
    config = yaml.safe_load(Path(TINY).read_text())
    config["run"] = {"dir": str(sweep_dir)}
    config["finetune"].update({"weights": str(weights), "epochs": 1, "probe_epochs": 1, "bootstrap": 10})
    config["sweep"] = {"tasks": [], "strategies": ["baseline", "linear", "linear_fit"], "fractions": [1.0], "seeds": [0],
                       "benchmarks": [
                           {"name": "physionet", "kind": "physionet2021", "corpus": str(physionet),
                            "tasks": ["georgia", "ningbo"]},
                           {"name": "code15", "kind": "code15", "corpus": str(code15)},
                           {"name": "hospital", "kind": "labels", "corpus": str(hospital)}]}
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_sweep_over_three_benchmarks_makes_one_table_with_a_benchmark_column_and_linear_rows(
        split_physionet_corpus, code15_corpus, hospital_corpus, weights, tmp_path):
    config = benchmarks_config(tmp_path / "sweep.yaml", tmp_path / "sweep", weights, split_physionet_corpus,
                               code15_corpus, hospital_corpus)
    done = python_m("ecgdist.submit", "finetune", config, "--cluster", "debug", "--wait", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "sweep"
    with open(sweep / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["benchmark"], r["task"], r["strategy"]) for r in rows} == {
        (b, t, s) for b, t in [("physionet", "georgia"), ("physionet", "ningbo"), ("code15", "abnormalities"),
                               ("hospital", "all")] for s in ("baseline", "linear", "linear_fit")}
    text = (sweep / "results.md").read_text()
    assert "| benchmark |" in text and "| physionet | georgia | linear |" in text
    assert "Not in physionet georgia (no record holds them; left out): " in text  # the 21 absent scored classes
    assert "physionet: folds made by preprocess split, seed 0" in text
    assert "linear_fit: no epochs, one logistic regression per class on the frozen pooled features, C from " \
        "0.01, 0.1, 1.0, 10.0 by fold 9's macro AUROC" in text
    result = json.loads((sweep / "jobs" / "physionet-georgia-linear-f1-s0" / "result.json").read_text())
    assert result["benchmark"] == "physionet" and len(result["classes_not_in_task"]) == 21
    assert result["records"] == {"train": 8, "val": 1, "test": 1}
    # linear trains the head alone: the backbone, BatchNorm statistics included, is the pre-trained one
    pretrained, _ = read_weights(weights)
    for strategy, same in (("linear", True), ("linear_fit", True), ("baseline", False)):
        tuned, _ = read_weights(sweep / "jobs" / f"code15-abnormalities-{strategy}-f1-s0" / "model.pth")
        backbone = [k for k in pretrained if not k.startswith("dense.")]
        assert all(torch.equal(tuned[k], pretrained[k]) for k in backbone) == same, strategy
        assert tuned["dense.weight"].shape == (6, pretrained["dense.weight"].shape[1])
