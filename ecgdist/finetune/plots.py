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


MIN_SPAN = 0.1  # the metric axis spans at least this: a 0.002 difference is not drawn at full height


def metric_vs_fraction_figure(rows: list[dict], task: str, metric: str, title: str = ""):
    """The table's numbers for one task, one point per strategy and label fraction: the seed mean with
    its bootstrap interval (5th-95th percentile; the seeds' sd where no bootstrap ran). Against label
    fraction when the sweep has several, else one dot per strategy; ``title`` names the data and
    backbone (a figure made from SIMULATED data says so there)."""
    rows = [r for r in rows if r["task"] == task]
    strategies = sorted({r["strategy"] for r in rows})
    fractions = sorted({r["fraction"] for r in rows})
    fig, ax = plt.subplots(figsize=(6, 4))
    extent = []
    for k, strategy in enumerate(strategies):
        points = sorted((r["fraction"], r[f"{metric}_mean"], *interval(r, metric)) for r in rows
                        if r["strategy"] == strategy)
        x, y, low, high = (np.array(v, dtype=float) for v in zip(*points))
        position = x if len(fractions) > 1 else np.full(len(x), k, dtype=float)
        # The interval as the table gives it (a seed mean may lie outside its ensemble's interval).
        (line,) = ax.plot(position, y, marker="o", label=strategy, linestyle="-" if len(fractions) > 1 else "none")
        ax.vlines(position, low, high, color=line.get_color(), linewidth=1.5)
        extent += [*low, *high, *y]
    if len(fractions) > 1:
        ax.set_xscale("log")
        ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel("label fraction of training folds")
        ax.legend()
    else:
        ax.set_xticks(range(len(strategies)), strategies)
        ax.set_xlim(-0.5, len(strategies) - 0.5)
        ax.set_xlabel(f"strategy (label fraction {fractions[0]:g})")
    ax.set_ylim(*metric_range(extent))
    what = "5th-95th percentile bootstrap interval" if any(np.isfinite(r[f"{metric}_low"]) for r in rows) \
        else "sd over seeds"
    ax.set(ylabel=f"{metric.replace('_', ' ')}, seed mean ({what})", title=title or f"PTB-XL {task}")
    fig.tight_layout()
    return fig


def interval(row: dict, metric: str) -> tuple[float, float]:
    """The row's bootstrap interval of ``metric``, or mean -+ sd over seeds where none was drawn."""
    low, high = row[f"{metric}_low"], row[f"{metric}_high"]
    if np.isfinite(low) and np.isfinite(high):
        return low, high
    return row[f"{metric}_mean"] - row[f"{metric}_sd"], row[f"{metric}_mean"] + row[f"{metric}_sd"]


def metric_range(values: list[float]) -> tuple[float, float]:
    """Limits holding ``values`` and spanning at least MIN_SPAN, within [0, 1] where the values are."""
    finite = [v for v in values if np.isfinite(v)] or [0.5]
    low, high = min(finite), max(finite)
    pad = max(MIN_SPAN - (high - low), 0.0) / 2 + 0.01
    low, high = low - pad, high + pad
    if low < 0 <= min(finite):
        low, high = 0.0, max(high - low, MIN_SPAN)
    if high > 1 >= max(finite):
        low, high = min(low - (high - 1), 1 - MIN_SPAN), 1.0
    return low, high
