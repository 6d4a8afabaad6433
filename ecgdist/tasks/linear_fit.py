"""A linear read-out of frozen features: the linear evaluation a downstream probe reports.

One L2-regularised logistic regression per class (scikit-learn's lbfgs) on features
standardised with the training split's mean and spread; the regularisation strength is
chosen from a small grid by the validation split's macro AUROC, and the test split is
scored once, with that choice. A class without a positive or a negative among the
training records cannot be fitted: it scores its training prevalence, a constant, so its
AUROC is 0.5 wherever it is scorable (the honest answer: the read-out learnt nothing of it).
The fitted regressions are a linear layer in the features' own units (``fit``), so a fine-tune's
``linear_fit`` strategy sets them as its model's head.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from ecgdist.tasks.metrics import macro_auroc

C_GRID = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths tried


def fit(train_x: np.ndarray, train_y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(weight (K, D), bias (K,)) of the regressions, one per class, fitted on the standardised training
    split and mapped back to the features' own units, so that ``sigmoid(x @ weight.T + bias)`` is each
    class's probability: the head of a model, as a linear layer. A class the training records hold all
    or none of gets its prevalence (clipped to a finite logit) for every record."""
    mean, spread = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    standardised = (train_x - mean) / spread
    weight, bias = np.zeros((train_y.shape[1], train_x.shape[1])), np.zeros(train_y.shape[1])
    for k in range(train_y.shape[1]):
        column = train_y[:, k] > 0
        if column.all() or not column.any():
            bias[k] = logit(np.clip(column.mean(), 1e-6, 1 - 1e-6))
            continue
        model = LogisticRegression(C=c, max_iter=1000).fit(standardised, column)
        weight[k] = model.coef_[0] / spread
        bias[k] = model.intercept_[0] - weight[k] @ mean
    return weight, bias


def read_out(head: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Per-class probabilities of the features ``x`` under the regressions ``fit`` returned."""
    weight, bias = head
    return expit(x @ weight.T + bias)


def fit_scores(train_x: np.ndarray, train_y: np.ndarray, xs: list[np.ndarray], c: float) -> list[np.ndarray]:
    """Per-class probabilities for each array of ``xs`` from regressions fitted on the training split."""
    head = fit(train_x, train_y, c)
    return [read_out(head, x) for x in xs]


def select_c(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
             grid: tuple[float, ...] = C_GRID) -> tuple[float, float, tuple[np.ndarray, np.ndarray]]:
    """(C, validation macro AUROC, its regressions as ``fit`` returns them) of the grid's best read-out
    on the validation split (the grid's middle when no class is scorable there); the first of equals,
    so the strongest regularisation."""
    heads = [fit(train_x, train_y, c) for c in grid]
    results = [(macro_auroc(val_y, read_out(head, val_x)), c, head) for c, head in zip(grid, heads)]
    finite = [r for r in results if np.isfinite(r[0])]
    val_auroc, c, head = max(finite, key=lambda r: r[0]) if finite else results[len(grid) // 2]
    return c, float(val_auroc), head
