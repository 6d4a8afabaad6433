"""A linear read-out of frozen features: the linear evaluation a downstream probe reports.

One L2-regularised logistic regression per class (scikit-learn's lbfgs) on features
standardised with the training split's mean and spread; the regularisation strength is
chosen from a small grid by the validation split's macro AUROC, and the test split is
scored once, with that choice. A class without a positive or a negative among the
training records cannot be fitted: it scores its training prevalence, a constant, so its
AUROC is 0.5 wherever it is scorable (the honest answer: the read-out learnt nothing of it).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from ecgdist.tasks.metrics import macro_auprc, macro_auroc

C_GRID = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths tried


def fit_scores(train_x: np.ndarray, train_y: np.ndarray, xs: list[np.ndarray], c: float) -> list[np.ndarray]:
    """Per-class probabilities for each array of ``xs`` from regressions fitted on the training split."""
    mean, spread = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    train_x = (train_x - mean) / spread
    xs = [(x - mean) / spread for x in xs]
    scores = [np.empty((len(x), train_y.shape[1])) for x in xs]
    for k in range(train_y.shape[1]):
        column = train_y[:, k] > 0
        if column.all() or not column.any():
            for s in scores:
                s[:, k] = column.mean()
            continue
        model = LogisticRegression(C=c, max_iter=1000).fit(train_x, column)
        for s, x in zip(scores, xs):
            s[:, k] = model.predict_proba(x)[:, 1]
    return scores


def linear_evaluation(features: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                      grid: tuple[float, ...] = C_GRID) -> dict:
    """{"c", "val_macro_auroc", "test_macro_auroc", "test_macro_auprc"} from train / val / test features."""
    results = []
    for c in grid:
        val, test = fit_scores(features["train"], targets["train"], [features["val"], features["test"]], c)
        results.append((macro_auroc(targets["val"], val), c, test))
    finite = [r for r in results if np.isfinite(r[0])]
    val_auroc, c, test = max(finite, key=lambda r: r[0]) if finite else results[len(grid) // 2]
    return {"c": c, "val_macro_auroc": float(val_auroc), "test_macro_auroc": macro_auroc(targets["test"], test),
            "test_macro_auprc": macro_auprc(targets["test"], test)}
