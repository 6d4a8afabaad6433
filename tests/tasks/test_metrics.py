import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ecgdist.tasks.metrics import evaluate, fmax, macro_auprc, macro_auroc


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


def test_rank_auroc_equals_scikit_learn_with_ties_and_duplicates():
    targets, scores = sample(3)
    scores = np.round(scores, 1)  # many ties
    rows = np.random.default_rng(0).integers(0, len(targets), len(targets))  # a resample: duplicated records
    expected = np.mean([roc_auc_score(targets[rows, k], scores[rows, k]) for k in range(targets.shape[1])])
    assert macro_auroc(targets[rows], scores[rows]) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_resamples_keep_every_scored_class():
    from ecgdist.tasks.metrics import bootstrap_indices, scorable

    rng = np.random.default_rng(0)
    targets = np.zeros((40, 3))
    targets[rng.permutation(40)[:2], 0] = 1  # a rare class: most plain resamples would lose it
    targets[:, 1] = rng.random(40) < 0.5
    targets[:, 2] = 1  # never scorable (no negative): does not constrain the resamples
    rows = bootstrap_indices(targets, 300, seed=1)
    assert rows.shape == (300, 40)
    for resample in rows:
        assert scorable(targets[resample])[:2].all()
    # The same seed draws the same resamples.
    assert (bootstrap_indices(targets, 300, seed=1) == rows).all()


def test_bootstrap_redraws_are_bounded_when_a_class_is_too_rare():
    from ecgdist.tasks.metrics import bootstrap_indices

    targets = np.zeros((500, 30))
    targets[np.arange(30), np.arange(30)] = 1  # 30 classes of one positive each: a resample keeps all ~1e-6
    with pytest.raises(ValueError, match="redraw"):
        bootstrap_indices(targets, 10, seed=0)


def test_paired_difference_of_identical_scores_is_zero_with_zero_width():
    from ecgdist.tasks.metrics import paired_difference

    targets, scores = sample()
    point, (low, high) = paired_difference(targets, [scores, scores], [scores, scores], macro_auroc, 200, 0)
    assert point == 0.0 and low == 0.0 and high == 0.0


def test_paired_difference_sees_a_real_gain_that_is_more_than_noise():
    from ecgdist.tasks.metrics import paired_difference

    targets, weak = sample(1)
    rng = np.random.default_rng(5)
    strong = np.clip(weak + 0.3 * targets + 0.05 * rng.random(weak.shape), 0, 1.5)
    point, (low, high) = paired_difference(targets, [strong], [weak], macro_auroc, 300, 0)
    assert point == pytest.approx(macro_auroc(targets, strong) - macro_auroc(targets, weak))
    assert 0 < low <= point <= high


def test_vectorised_average_precision_equals_scikit_learn_with_ties_and_duplicates():
    from ecgdist.tasks.metrics import per_class_auprc

    targets, scores = sample(4, n=300, k=7)
    for rounded in (scores, np.round(scores, 1), np.round(scores, 0)):
        rows = np.random.default_rng(1).integers(0, len(targets), len(targets))
        expected = [average_precision_score(targets[rows, k], rounded[rows, k]) for k in range(targets.shape[1])]
        assert np.allclose(per_class_auprc(targets[rows], rounded[rows]), expected, atol=1e-12)
