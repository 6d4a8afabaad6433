import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ecgdist.metrics import evaluate, fmax, macro_auprc, macro_auroc


def sample(seed=0, n=200, k=5):
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, k)) < 0.3).astype(float)
    scores = np.clip(targets * 0.3 + rng.random((n, k)) * 0.7, 0, 1)
    return targets, scores


def test_macro_scores_equal_scikit_learn():
    targets, scores = sample()
    assert macro_auroc(targets, scores) == pytest.approx(roc_auc_score(targets, scores, average="macro"))
    assert macro_auprc(targets, scores) == pytest.approx(average_precision_score(targets, scores, average="macro"))


def test_classes_without_positives_or_negatives_are_left_out_and_counted():
    targets, scores = sample()
    targets[:, 1] = 0  # no positive
    targets[:, 3] = 1  # no negative
    report = evaluate(targets, scores, list("abcde"))
    assert report["classes_scored"] == 3 and report["classes_left_out"] == ["b", "d"]
    assert report["per_class_auroc"]["b"] is None
    keep = [0, 2, 4]
    assert report["macro_auroc"] == pytest.approx(roc_auc_score(targets[:, keep], scores[:, keep], average="macro"))


def test_fmax_of_perfect_scores_is_one_and_of_noise_is_lower():
    targets, _ = sample()
    assert fmax(targets, targets) == pytest.approx(1.0)
    assert fmax(targets, np.random.default_rng(1).random(targets.shape)) < 0.7


def test_bootstrap_intervals_are_stable_for_a_seed_and_bracket_the_estimate():
    targets, scores = sample()
    a = evaluate(targets, scores, list("abcde"), resamples=200, seed=7)
    b = evaluate(targets, scores, list("abcde"), resamples=200, seed=7)
    c = evaluate(targets, scores, list("abcde"), resamples=200, seed=8)
    assert a["macro_auroc_ci"] == b["macro_auroc_ci"] and a["macro_auroc_ci"] != c["macro_auroc_ci"]
    low, high = a["macro_auroc_ci"]
    assert low < a["macro_auroc"] < high
