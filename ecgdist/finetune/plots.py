"""Fine-tune figures (ROC/PR curves per class, metric against label fraction), drawn with matplotlib's file backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def roc_pr_figure(targets: np.ndarray, scores: np.ndarray, classes: list[str], max_classes: int = 12,
                  title: str = ""):
    """ROC and precision-recall curves of the scorable classes (the most frequent first); ``title``
    names the data (a figure of SIMULATED data says so)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    positives = targets.sum(axis=0)
    order = [k for k in np.argsort(-positives) if 0 < positives[k] < len(targets)][:max_classes]
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for k in order:
        fpr, tpr, _ = roc_curve(targets[:, k], scores[:, k])
        precision, recall, _ = precision_recall_curve(targets[:, k], scores[:, k])
        roc_ax.plot(fpr, tpr, linewidth=1, label=classes[k])
        pr_ax.plot(recall, precision, linewidth=1, label=classes[k])
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test fold)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall (test fold)")
    roc_ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def metric_vs_fraction_figure(rows: list[dict], task: str, metric: str, title: str = ""):
    """Mean (with sd bars) of ``metric`` against label fraction, one line per strategy; ``title``
    names the data and backbone (a figure made from SIMULATED data says so there)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy in sorted({r["strategy"] for r in rows}):
        points = sorted((r["fraction"], r[f"{metric}_mean"], r[f"{metric}_sd"]) for r in rows
                        if r["task"] == task and r["strategy"] == strategy)
        if points:
            x, y, sd = zip(*points)
            ax.errorbar(x, y, yerr=sd, marker="o", capsize=3, label=strategy)
    ax.set(xscale="log", xlabel="label fraction of training folds", ylabel=metric.replace("_", " "),
           title=title or f"PTB-XL {task}")
    ax.legend()
    fig.tight_layout()
    return fig
