"""External test sets: CODE-test-layout exams scored by a CODE-15 % benchmark's jobs after fold 10.

The test set is ptbxl-mini's 110 real records in CODE-test's layout (conftest), none of them a
CODE-15 % exam; the benchmark is code15-mini (10 exams). Both are tiny: these tests check that
every record is scored with the selected weights, that the figures are what an independent
reading of the files gives, and that a test set the jobs could learn from is refused."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import build_corpus, code15_as_code_test
from launch import python_m
from sklearn.metrics import roc_auc_score

from ecgdist.config import ConfigError, FinetuneConfig, PretrainConfig, load_config, save_resolved
from ecgdist.finetune.export import export
from ecgdist.finetune.plan import benchmark_runs
from ecgdist.finetune.predict import Classifier
from ecgdist.finetune.weights import build_finetune_model
from ecgdist.models.pretrained import read_weights, save_weights

TINY = "configs/finetune/ptbxl_tiny.yaml"
KEY = "sweep.benchmarks (code15) external (codetest)"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Released-format weights of a tiny Net1D (random, and without a record of their training data)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    save_weights(build_finetune_model(load_config(FinetuneConfig, TINY), "scratch", 150), path)
    return path


def external_config(path: Path, sweep_dir: Path, weights, code15, code_test, strategies=("baseline",)) -> Path:
    config = yaml.safe_load(Path(TINY).read_text())
    config["run"] = {"dir": str(sweep_dir)}
    config["finetune"].update({"weights": str(weights), "epochs": 1, "probe_epochs": 1, "bootstrap": 10})
    config["sweep"] = {"tasks": [], "strategies": list(strategies), "fractions": [1.0], "seeds": [0],
                       "benchmarks": [{"name": "code15", "kind": "code15", "corpus": str(code15),
                                       "external": {"codetest": str(code_test)}}]}
    path.write_text(yaml.safe_dump(config))
    return path


def gold_standard(folder: Path, classes: list[str]) -> np.ndarray:
    with open(folder / "annotations" / "gold_standard.csv", newline="") as f:
        return np.array([[float(row[c]) for c in classes] for row in csv.DictReader(f)], dtype=np.float32)


def test_every_record_of_an_external_test_set_is_scored_and_has_rows_of_its_own(
        code15_corpus, code_test_dir, code_test_corpus, weights, tmp_path):
    config = external_config(tmp_path / "sweep.yaml", tmp_path / "sweep", weights, code15_corpus, code_test_corpus,
                             ("baseline", "post_training"))
    done = python_m("ecgdist.submit", "finetune", config, "--cluster", "debug", "--wait", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "vs code15 external test set codetest: unknown" in done.stdout  # checked before submitting
    sweep = tmp_path / "sweep"
    job = sweep / "jobs" / "code15-abnormalities-baseline-f1-s0"
    result = json.loads((job / "result.json").read_text())
    tested = result["external"]["codetest"]
    assert (tested["records"], tested["corpus"]) == (110, str(code_test_corpus))
    assert tested["pretraining_data"]["status"] == "unknown"  # the weights list no training records
    folder = job / "external" / "codetest"
    classes = json.loads((folder / "classes.json").read_text())
    assert classes == json.loads((job / "classes.json").read_text()) == ["1dAVb", "AF", "LBBB", "RBBB", "SB", "ST"]
    targets, scores = np.load(folder / "test_targets.npy"), np.load(folder / "test_scores.npy")
    np.testing.assert_array_equal(targets, gold_standard(code_test_dir, classes))  # every exam, in file order
    # the model the job kept, run on the test set's corpus by ecgdist.predict's own reader
    predicted = np.array([p for _, p in Classifier(job / "model.pth").corpus(code_test_corpus)])
    np.testing.assert_allclose(scores, predicted, atol=1e-5)
    scorable = [k for k in range(len(classes)) if 0 < targets[:, k].sum() < len(targets)]
    assert [classes[k] for k in scorable] == ["AF", "SB", "ST"]  # ptbxl-mini holds no 1dAVb, LBBB, RBBB
    expected = np.mean([roc_auc_score(targets[:, k], scores[:, k]) for k in scorable])
    assert tested["macro_auroc"] == pytest.approx(expected, abs=1e-6)
    assert tested["classes_left_out"] == ["1dAVb", "LBBB", "RBBB"]
    with open(sweep / "results.csv") as f:
        rows = {(r["benchmark"], r["strategy"]): r for r in csv.DictReader(f)}
    assert set(rows) == {(b, s) for b in ("code15", "code15→codetest") for s in ("baseline", "post_training")}
    assert float(rows["code15→codetest", "baseline"]["macro_auroc_mean"]) == pytest.approx(expected, abs=1e-6)
    assert float(rows["code15", "baseline"]["macro_auroc_mean"]) == pytest.approx(result["macro_auroc"], nan_ok=True)
    with open(sweep / "paired.csv") as f:
        assert "code15→codetest" in {r["benchmark"] for r in csv.DictReader(f)}
    text = (sweep / "results.md").read_text()
    assert f"External test sets (every record, scored with the weights fold 9 selected; none holds a record of " \
           f"folds 1-9 of its benchmark's corpus): code15→codetest: {code_test_corpus}" in text
    assert "| code15→codetest | abnormalities | baseline |" in text and "code15→codetest abnormalities 110" in text
    assert text.count("No training positive in code15") == 1  # a note on training, at the benchmark's own rows
    assert list(sweep.glob("code15_on_codetest_abnormalities_macro_auroc_vs_fraction.png"))
    export(job, tmp_path / "shared.pth")  # a shared model carries its external rows beside fold 10's
    _, extra = read_weights(tmp_path / "shared.pth")
    assert "| net1d | code15→codetest | abnormalities | baseline | 1 | " in extra["results_table"]
    assert extra["result"]["external"]["codetest"]["macro_auroc"] == pytest.approx(expected, abs=1e-6)


def test_a_test_set_holding_records_the_jobs_learn_from_is_refused_before_submission(
        shared_data, code15_corpus, weights, tmp_path):
    """code15-mini's own exams in CODE-test's layout: the same tracings, found by content."""
    same_exams = build_corpus("code-test", code15_as_code_test(shared_data / "code15-mini", tmp_path / "layout"),
                              tmp_path / "same")
    config = external_config(tmp_path / "sweep.yaml", tmp_path / "sweep", weights, code15_corpus, same_exams)
    done = python_m("ecgdist.submit", "finetune", config, "--cluster", "debug", "--dry-run")
    assert done.returncode == 2
    assert f"config key '{KEY}': " in done.stderr and f"records of {same_exams} are records of folds 1-9 of " \
        f"{code15_corpus}, which its jobs train and select on" in done.stderr
    assert not (tmp_path / "sweep" / "jobs").exists()


def test_a_test_set_made_with_other_inputs_is_refused_before_submission(
        code15_corpus, code_test_dir, weights, tmp_path):
    filtered = build_corpus("code-test", code_test_dir, tmp_path / "filtered", "--filter", "ecgfounder")
    config = external_config(tmp_path / "sweep.yaml", tmp_path / "sweep", weights, code15_corpus, filtered)
    done = python_m("ecgdist.submit", "finetune", config, "--cluster", "debug", "--dry-run")
    assert done.returncode == 2
    assert f"config key '{KEY}': {filtered} was made with other inputs than {code15_corpus} " \
           "(filter ecgfounder vs none)" in done.stderr


def test_each_backbone_scores_the_test_set_made_with_its_own_recipe():
    cfg = load_config(FinetuneConfig, None, [
        "sweep.tasks=[]", "sweep.benchmarks=[{name: code15, kind: code15, corpus: c15, external: {codetest: ct}}]",
        "sweep.backbones=[{name: a, weights: a.pth}, {name: b, weights: b.pth, "
        "corpora: {code15: c15_b, code15/codetest: ct_b}}]"])
    tests = {run.backbone: (run.cfg.data.corpus, run.cfg.sweep.benchmarks[0].external, run.external_keys["codetest"])
             for run in benchmark_runs(cfg)}
    assert tests == {"a": ("c15", {"codetest": "ct"}, KEY),
                     "b": ("c15_b", {"codetest": "ct_b"}, "sweep.backbones (b) corpora (code15/codetest)")}
    with pytest.raises(ConfigError, match=r"corpora' names code15/other, which sweep.benchmarks does not have "
                                          r"\(code15, code15/codetest\)"):
        load_config(FinetuneConfig, None, [
            "sweep.benchmarks=[{name: code15, kind: code15, corpus: c15, external: {codetest: ct}}]",
            "sweep.backbones=[{name: b, corpora: {code15/other: x}}]"])
    with pytest.raises(ConfigError, match=r"'probe.benchmarks \(code15\) external': a probe never reads a test set"):
        load_config(PretrainConfig, None, ["probe.benchmarks=[{name: code15, kind: code15, tasks: [abnormalities], "
                                           "external: {codetest: ct}}]"])


def test_a_test_set_added_to_a_finished_sweep_scores_its_models_without_training_them_again(
        code15_corpus, code_test_corpus, weights, tmp_path):
    sweep = tmp_path / "sweep"
    config = external_config(tmp_path / "sweep.yaml", sweep, weights, code15_corpus, code_test_corpus)
    first = yaml.safe_load(config.read_text())
    del first["sweep"]["benchmarks"][0]["external"]
    config.write_text(yaml.safe_dump(first))
    done = python_m("ecgdist.submit", "finetune", config, "--cluster", "debug", "--wait", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    job = sweep / "jobs" / "code15-abnormalities-baseline-f1-s0"
    before = json.loads((job / "result.json").read_text())
    assert "external" not in before
    model, state = (job / "model.pth").read_bytes(), (job / "state.pt").stat().st_mtime_ns
    config = external_config(tmp_path / "sweep.yaml", sweep, weights, code15_corpus, code_test_corpus)
    shutil.copy(sweep / "config.yaml", tmp_path / "first.yaml")
    save_resolved(load_config(FinetuneConfig, config), sweep)  # as a resubmission records it, before its job runs
    status = python_m("ecgdist.submit", "status", sweep).stdout
    assert "1/1 completed" in status and "to score on codetest: resubmit the sweep to score it" in status
    shutil.copy(tmp_path / "first.yaml", sweep / "config.yaml")
    done = python_m("ecgdist.submit", "finetune", config, "--cluster", "debug", "--wait", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 jobs, 1 submitted" in done.stdout
    after = json.loads((job / "result.json").read_text())
    folder = job / "external" / "codetest"
    targets, scores = np.load(folder / "test_targets.npy"), np.load(folder / "test_scores.npy")
    expected = np.mean([roc_auc_score(targets[:, k], scores[:, k]) for k in range(targets.shape[1])
                        if 0 < targets[:, k].sum() < len(targets)])
    assert after["external"]["codetest"]["macro_auroc"] == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(scores, [p for _, p in Classifier(job / "model.pth").corpus(code_test_corpus)], atol=1e-5)
    assert (job / "model.pth").read_bytes() == model and (job / "state.pt").stat().st_mtime_ns == state
    assert {k: v for k, v in after.items() if k != "external"} == before  # fold 10's figures untouched
    with open(sweep / "results.csv") as f:
        assert {r["benchmark"] for r in csv.DictReader(f)} == {"code15", "code15→codetest"}
    assert "to score" not in python_m("ecgdist.submit", "status", sweep).stdout
    again = python_m("ecgdist.submit", "finetune", config, "--cluster", "debug", "--dry-run")
    assert "1 jobs, 0 would be submitted" in again.stdout
    moved = shutil.copytree(code_test_corpus, tmp_path / "moved")  # the same records elsewhere: another corpus
    changed = python_m("ecgdist.submit", "finetune", config, f"sweep.benchmarks.0.external.codetest={moved}",
                       "--cluster", "debug", "--dry-run")
    assert changed.returncode == 2 and "sweep.external (code15/codetest) differ" in changed.stderr
    config.write_text(yaml.safe_dump(first))  # the sweep's first config, without the test set its results now hold
    dropped = python_m("ecgdist.submit", "finetune", config, "--cluster", "debug", "--dry-run")
    assert dropped.returncode == 2 and "(sweep.external (code15/codetest) dropped, whose rows its jobs hold)" in dropped.stderr
