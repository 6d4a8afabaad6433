"""Multi-label metrics of the PTB-XL benchmark: macro AUROC, macro AUPRC, Fmax, bootstrap intervals.

Per-class scores are scikit-learn's. A class without a positive or without a negative in
the evaluated records has no AUROC: it is left out of the macro averages and counted,
never a crash. Intervals come from scipy's percentile bootstrap over records (seeded).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score


def scorable(targets: np.ndarray) -> np.ndarray:
    positives = targets.sum(axis=0)
    return (positives > 0) & (positives < len(targets))


def per_class_auroc(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each class; NaN where a class cannot be scored."""
    ok = scorable(targets)
    out = np.full(targets.shape[1], np.nan)
    for k in np.flatnonzero(ok):
        out[k] = roc_auc_score(targets[:, k], scores[:, k])
    return out


def macro_auroc(targets: np.ndarray, scores: np.ndarray) -> float:
    values = per_class_auroc(targets, scores)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def macro_auprc(targets: np.ndarray, scores: np.ndarray) -> float:
    ok = scorable(targets)
    if not ok.any():
        return float("nan")
    return float(np.mean([average_precision_score(targets[:, k], scores[:, k]) for k in np.flatnonzero(ok)]))


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


def bootstrap_interval(targets: np.ndarray, scores: np.ndarray, metric, resamples: int, seed: int) -> tuple[float, float]:
    """95 % percentile interval of ``metric`` over records resampled with replacement."""
    if resamples <= 0 or len(targets) < 2:
        return float("nan"), float("nan")
    with warnings.catch_warnings():  # tiny folds: some resamples score no class (NaN), scipy warns
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap((np.arange(len(targets)),), lambda idx: metric(targets[idx], scores[idx]),
                                 n_resamples=resamples, vectorized=False, method="percentile",
                                 confidence_level=0.95, random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def evaluate(targets: np.ndarray, scores: np.ndarray, classes: list[str], resamples: int = 0, seed: int = 0) -> dict:
    ok = scorable(targets)
    per_class = per_class_auroc(targets, scores)
    report = {"macro_auroc": macro_auroc(targets, scores), "macro_auprc": macro_auprc(targets, scores),
              "fmax": fmax(targets, scores), "classes": len(classes), "classes_scored": int(ok.sum()),
              "classes_left_out": [c for c, good in zip(classes, ok) if not good],
              "per_class_auroc": {c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, per_class)}}
    if resamples:
        report["macro_auroc_ci"] = bootstrap_interval(targets, scores, macro_auroc, resamples, seed)
        report["macro_auprc_ci"] = bootstrap_interval(targets, scores, macro_auprc, resamples, seed)
    return report
