"""The results table: intervals of the seed mean, and the paired gain post_training - baseline."""

import csv
import json

import numpy as np
import pytest

from ecgdist.tasks.metrics import macro_auroc
from ecgdist.finetune.results import paired_gains, read_results, write_results


def fake_job(sweep, strategy, seed, targets, scores, benchmark=None, **epochs):
    folder = sweep / "jobs" / (f"{benchmark}-" * bool(benchmark) + f"rhythm-{strategy}-f1-s{seed}")
    folder.mkdir(parents=True)
    np.save(folder / "test_targets.npy", targets)
    np.save(folder / "test_scores.npy", scores)
    result = {"task": "rhythm", "strategy": strategy, "fraction": 1.0, "seed": seed,
              "macro_auroc": macro_auroc(targets, scores), "macro_auprc": 0.5, **epochs}
    (folder / "result.json").write_text(json.dumps({**result, "benchmark": benchmark} if benchmark else result))


def sample(seed):
    rng = np.random.default_rng(seed)
    targets = (rng.random((120, 4)) < 0.3).astype(float)
    return targets, np.clip(targets * 0.3 + rng.random(targets.shape) * 0.7, 0, 1)


def test_identical_strategies_have_a_zero_paired_gain_with_a_zero_width_interval(tmp_path):
    targets, _ = sample(0)
    for seed in (0, 1):
        scores = np.clip(targets * 0.3 + np.random.default_rng(seed).random(targets.shape) * 0.7, 0, 1)
        fake_job(tmp_path, "baseline", seed, targets, scores)
        fake_job(tmp_path, "post_training", seed, targets, scores)
    (row,) = paired_gains(read_results(tmp_path), resamples=100)
    assert row["seeds"] == 2
    assert (row["macro_auroc_diff"], row["macro_auroc_diff_low"], row["macro_auroc_diff_high"]) == (0.0, 0.0, 0.0)
    rows = write_results(tmp_path, "header line", resamples=100)
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("header line") and "| rhythm | 1 | 2 | +0.0000 [+0.0000, +0.0000] |" in text
    low, high = rows[0]["macro_auroc_low"], rows[0]["macro_auroc_high"]
    assert low < rows[0]["macro_auroc_mean"] < high  # the seed mean's interval brackets it
    assert f"[{low:.3f}, {high:.3f}]" in text


def test_paired_gains_are_per_benchmark_for_a_task_name_two_benchmarks_share(tmp_path):
    """A job written before benchmarks existed ran a PTB-XL task; a hospital's "rhythm" task is another row."""
    targets, scores = sample(0)
    other_targets, other_scores = sample(1)
    fake_job(tmp_path, "baseline", 0, targets, scores)
    fake_job(tmp_path, "post_training", 0, targets, np.clip(scores + targets * 0.2, 0, 1))
    fake_job(tmp_path, "baseline", 0, other_targets, other_scores, benchmark="hospital")
    fake_job(tmp_path, "post_training", 0, other_targets, other_scores, benchmark="hospital")
    rows = {row["benchmark"]: row for row in paired_gains(read_results(tmp_path), resamples=20)}
    assert set(rows) == {"ptbxl", "hospital"}
    assert rows["hospital"]["macro_auroc_diff"] == 0.0 and rows["ptbxl"]["macro_auroc_diff"] > 0
    write_results(tmp_path, resamples=20)
    text = (tmp_path / "results.md").read_text()
    assert "| hospital | rhythm | 1 | 1 | +0.0000" in text and "| ptbxl | rhythm | post_training |" in text


def test_jobs_tested_on_different_records_are_not_paired(tmp_path):
    targets, scores = sample(0)
    fake_job(tmp_path, "baseline", 0, targets, scores)
    fake_job(tmp_path, "post_training", 0, targets[::-1].copy(), scores)
    with pytest.raises(ValueError, match="ptbxl rhythm at fraction 1: the jobs were tested on different records"):
        paired_gains(read_results(tmp_path), resamples=10)


def test_seeds_of_a_row_tested_on_different_records_are_not_averaged(tmp_path):
    """Same shapes, other records (a corpus rebuilt between jobs, say): an error naming the row, not a mean."""
    targets, scores = sample(0)
    fake_job(tmp_path, "baseline", 0, targets, scores)
    fake_job(tmp_path, "baseline", 1, targets[::-1].copy(), scores)
    with pytest.raises(ValueError, match="ptbxl rhythm baseline at fraction 1: the jobs were tested on different"):
        write_results(tmp_path)


def test_figures_made_from_simulated_data_say_so_in_their_title(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    targets, scores = sample(0)
    fake_job(tmp_path, "baseline", 0, targets, scores)
    titles = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: titles.append(fig.axes[0].get_title()))
    write_results(tmp_path, resamples=0, simulated=True)
    assert len(titles) == 2 and all(t.startswith("SIMULATED ECGs (not PTB-XL): rhythm") for t in titles)
    titles.clear()
    write_results(tmp_path, resamples=0)
    assert all(t.startswith("ptbxl rhythm") for t in titles)  # the benchmark's name


def test_rows_whose_validation_peaked_at_the_last_epoch_are_noted_with_their_seed_count(tmp_path):
    """A linear probe stopped while still improving understates the representation: the table says so."""
    targets, scores = sample(0)
    fake_job(tmp_path, "linear", 0, targets, scores, selected_epoch=5, epochs_trained=5)
    fake_job(tmp_path, "linear", 1, targets, scores, selected_epoch=3, epochs_trained=5)
    fake_job(tmp_path, "linear", 2, targets, scores, selected_epoch=5, epochs_trained=5)
    fake_job(tmp_path, "baseline", 0, targets, scores, selected_epoch=1, epochs_trained=1)  # one epoch: no curve
    fake_job(tmp_path, "scratch", 0, targets, scores)  # a result from before epochs were counted
    rows = {r["strategy"]: r for r in write_results(tmp_path)}
    assert {s: r["selected_at_last_epoch"] for s, r in rows.items()} == {"linear": 2, "baseline": 0, "scratch": 0}
    text = (tmp_path / "results.md").read_text()
    note = [line for line in text.splitlines() if line.startswith("Selected at the last epoch trained")]
    assert len(note) == 1 and note[0].endswith(": ptbxl rhythm linear at fraction 1 (2 of 3 seeds)")
    with open(tmp_path / "results.csv") as f:
        assert {r["strategy"]: r["selected_at_last_epoch"] for r in csv.DictReader(f)} == \
            {"linear": "2", "baseline": "0", "scratch": "0"}


def test_per_class_figures_are_each_class_over_seeds_beside_its_test_positives(tmp_path):
    """Restated with scikit-learn, column by column; a class without a test positive has no figure."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    targets, _ = sample(0)
    targets[:, 3] = 0  # no test positive
    scores = [np.clip(targets * 0.3 + np.random.default_rng(seed).random(targets.shape) * 0.7, 0, 1)
              for seed in (0, 1)]
    classes = ["NORM", "MI", "STTC", "CD"]
    for seed in (0, 1):
        fake_job(tmp_path, "baseline", seed, targets, scores[seed])
        (tmp_path / "jobs" / f"rhythm-baseline-f1-s{seed}" / "classes.json").write_text(json.dumps(classes))
    write_results(tmp_path)
    with open(tmp_path / "per_class.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == classes and {r["n_jobs"] for r in rows} == {"2"}
    for k, row in enumerate(rows[:3]):
        assert int(row["test_positives"]) == int(targets[:, k].sum()) > 0
        for name, metric in (("auroc", roc_auc_score), ("auprc", average_precision_score)):
            per_seed = [metric(targets[:, k], s[:, k]) for s in scores]
            assert float(row[f"{name}_mean"]) == pytest.approx(np.mean(per_seed), abs=1e-12)
            assert float(row[f"{name}_sd"]) == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
    assert (rows[3]["test_positives"], rows[3]["auroc_mean"], rows[3]["auprc_sd"]) == ("0", "", "")
