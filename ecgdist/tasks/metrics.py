"""Multi-label metrics of the PTB-XL benchmark: macro AUROC, macro AUPRC, Fmax, bootstrap intervals.

A class without a positive or without a negative in the evaluated records has no AUROC:
it is left out of the macro averages and counted, never a crash. AUROC is the
Mann-Whitney statistic on scipy's ranks (equal to scikit-learn's, ties included; tested),
and AUPRC is scikit-learn's average precision re-stated over all classes at once (equal to
it, ties included; tested): a thousand resamples of a 71-class task then take seconds
instead of minutes.

Intervals follow the PTB-XL benchmark (helme/ecg_ptbxl_benchmarking): test records are
resampled with replacement, a resample in which a scored class lost all its positives
(or here also all its negatives) is redrawn, so every resample scores the same classes,
and the interval runs from the 5th to the 95th percentile. The paired difference of two
models applies the same resamples to both, so the noise of the test set cancels.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np
from scipy import stats

log = logging.getLogger(__name__)
PERCENTILES = (5.0, 95.0)  # the PTB-XL benchmark's interval
MAX_REDRAWS = 1000  # draws per resample kept, before a class is declared too rare to bootstrap
Metric = Callable[[np.ndarray, np.ndarray], float]


def scorable(targets: np.ndarray) -> np.ndarray:
    positives = targets.sum(axis=0)
    return (positives > 0) & (positives < len(targets))


def per_class_auroc(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each class (tied scores count half); NaN where a class cannot be scored."""
    positive = targets > 0
    n_pos = positive.sum(axis=0)
    n_neg = len(targets) - n_pos
    ranks = stats.rankdata(scores, axis=0)  # average ranks for ties
    u = np.where(positive, ranks, 0.0).sum(axis=0) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scorable(targets), u / (n_pos * n_neg), np.nan)


def macro_auroc(targets: np.ndarray, scores: np.ndarray) -> float:
    values = per_class_auroc(targets, scores)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def per_class_auprc(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision of each class, as scikit-learn defines it (one step per distinct score,
    tied records counted together), for all classes at once; NaN where a class cannot be scored."""
    order = np.argsort(-scores, axis=0, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=0)
    hits = np.take_along_axis(targets > 0, order, axis=0)
    true_pos = np.cumsum(hits, axis=0)
    n = np.arange(1, len(scores) + 1)[:, None]
    group_end = np.vstack([ranked[1:] != ranked[:-1], np.ones((1, scores.shape[1]), bool)])
    # Each record takes the precision at the end of its group of tied scores.
    end_index = np.minimum.accumulate(np.where(group_end, n - 1, len(scores))[::-1], axis=0)[::-1]
    precision_at_end = np.take_along_axis(true_pos / n, end_index, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scorable(targets), (hits * precision_at_end).sum(axis=0) / true_pos[-1], np.nan)


def macro_auprc(targets: np.ndarray, scores: np.ndarray) -> float:
    values = per_class_auprc(targets, scores)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


FMAX_THRESHOLDS = np.linspace(0, 1, 101)


def fmax(targets: np.ndarray, scores: np.ndarray, thresholds: np.ndarray = FMAX_THRESHOLDS) -> float:
    """Maximum over thresholds of the sample-centric F1 (precision over records with a
    prediction, recall over records with a label), as in the PTB-XL benchmark. No library
    offers it."""
    best = 0.0
    labelled = targets.sum(axis=1) > 0
    for t in thresholds:
        predicted = scores >= t
        hits = (predicted & (targets > 0)).sum(axis=1)
        has_prediction = predicted.sum(axis=1) > 0
        if not has_prediction.any():
            continue
        precision = np.mean(hits[has_prediction] / predicted[has_prediction].sum(axis=1))
        recall = np.mean(hits[labelled] / targets[labelled].sum(axis=1))
        if precision + recall > 0:
            best = max(best, 2 * precision * recall / (precision + recall))
    return float(best)


def bootstrap_indices(targets: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, N) record indices; each resample keeps every class scorable in ``targets`` scorable."""
    rng = np.random.default_rng(seed)
    needed = scorable(targets)
    kept, draws = [], 0
    while len(kept) < resamples:
        rows = rng.integers(0, len(targets), len(targets))
        draws += 1
        if scorable(targets[rows])[needed].all():
            kept.append(rows)
        elif draws > MAX_REDRAWS * resamples:
            raise ValueError(f"bootstrap: after {draws} draws only {len(kept)} resamples keep every scored class "
                             "(a class has too few positives or negatives in the test records to redraw)")
    return np.array(kept, dtype=np.int64).reshape(resamples, len(targets))


def bootstrap(targets: np.ndarray, statistic: Callable[[np.ndarray], float], resamples: int,
              seed: int) -> tuple[float, tuple[float, float]]:
    """``statistic(rows)`` on all test records, and its 5th-95th percentile over class-keeping resamples."""
    point = float(statistic(np.arange(len(targets))))
    if resamples <= 0 or len(targets) < 2:
        return point, (float("nan"), float("nan"))
    try:
        rows = bootstrap_indices(targets, resamples, seed)
    except ValueError as error:  # a class too rare to keep in resamples: no interval rather than a wrong one
        log.warning("no bootstrap interval: %s", error)
        return point, (float("nan"), float("nan"))
    low, high = np.percentile([statistic(r) for r in rows], PERCENTILES)
    return point, (float(low), float(high))


def seed_mean(targets: np.ndarray, scores: Sequence[np.ndarray], metric: Metric) -> Callable[[np.ndarray], float]:
    """The statistic: the metric's mean over several seeds' scores of the same test records."""
    return lambda rows: float(np.mean([metric(targets[rows], s[rows]) for s in scores]))


def paired_difference(targets: np.ndarray, scores_a: Sequence[np.ndarray], scores_b: Sequence[np.ndarray],
                      metric: Metric, resamples: int, seed: int) -> tuple[float, tuple[float, float]]:
    """Mean over seeds of metric(a) - metric(b) on the same test records, with its bootstrap interval.

    ``scores_a[i]`` and ``scores_b[i]`` are two models' scores from the same seed; every
    resample applies the same records to all of them.
    """
    a, b = seed_mean(targets, scores_a, metric), seed_mean(targets, scores_b, metric)
    return bootstrap(targets, lambda rows: a(rows) - b(rows), resamples, seed)


def evaluate(targets: np.ndarray, scores: np.ndarray, classes: list[str], resamples: int = 0, seed: int = 0) -> dict:
    ok = scorable(targets)
    per_class = per_class_auroc(targets, scores)
    report = {"macro_auroc": macro_auroc(targets, scores), "macro_auprc": macro_auprc(targets, scores),
              "fmax": fmax(targets, scores), "classes": len(classes), "classes_scored": int(ok.sum()),
              "classes_left_out": [c for c, good in zip(classes, ok) if not good],
              "per_class_auroc": {c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, per_class)}}
    if resamples:
        for name, metric in (("macro_auroc", macro_auroc), ("macro_auprc", macro_auprc)):
            report[f"{name}_ci"] = bootstrap(targets, seed_mean(targets, [scores], metric), resamples, seed)[1]
    return report
