"""The sweep's figure shows what its table shows: each seed mean with its interval, an axis that does
not blow a test-set-noise difference up to full height, one dot a strategy when there is one fraction."""

import math

import numpy as np
import pytest

from ecgdist.finetune.plots import MIN_SPAN, metric_range, metric_vs_fraction_figure


def row(strategy, fraction, mean, low=math.nan, high=math.nan, sd=0.0):
    return {"task": "superdiagnostic", "strategy": strategy, "fraction": fraction, "macro_auroc_mean": mean,
            "macro_auroc_low": low, "macro_auroc_high": high, "macro_auroc_sd": sd}


def drawn(ax):
    """(x, y, lower, upper) of each strategy's points as drawn: its markers and its interval bars."""
    out = []
    for line, bars in zip(ax.lines, ax.collections):
        x, y = line.get_data()
        segments = bars.get_segments()
        out.append((list(x), list(y), [s[0][1] for s in segments], [s[1][1] for s in segments]))
    return out


def test_one_fraction_is_a_dot_per_strategy_with_its_bootstrap_interval_on_an_unzoomed_axis():
    rows = [row("baseline", 1.0, 0.801, 0.79, 0.812), row("post_training", 1.0, 0.803, 0.792, 0.815)]
    ax = metric_vs_fraction_figure(rows, "superdiagnostic", "macro_auroc", "ptbxl superdiagnostic").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "post_training"]
    assert drawn(ax) == [([0.0], [0.801], [pytest.approx(0.79)], [pytest.approx(0.812)]),
                         ([1.0], [0.803], [pytest.approx(0.792)], [pytest.approx(0.815)])]
    low, high = ax.get_ylim()
    assert high - low >= MIN_SPAN and low < 0.79 and high > 0.815  # 0.002 apart is not drawn full height
    assert "bootstrap interval" in ax.get_ylabel() and ax.get_xscale() == "linear"


def test_several_fractions_are_curves_on_a_log_axis_and_sd_stands_in_without_a_bootstrap():
    rows = [row(s, f, m, sd=0.02) for s, f, m in [("baseline", 0.1, 0.7), ("baseline", 1.0, 0.8),
                                                  ("post_training", 0.1, 0.75), ("post_training", 1.0, 0.82)]]
    ax = metric_vs_fraction_figure(rows, "superdiagnostic", "macro_auroc").axes[0]
    assert ax.get_xscale() == "log" and list(ax.get_xticks()) == [0.1, 1.0]
    (x, y, lower, upper), _ = drawn(ax)
    assert x == [0.1, 1.0] and y == [0.7, 0.8]
    assert lower == pytest.approx([0.68, 0.78]) and upper == pytest.approx([0.72, 0.82])
    assert "sd over seeds" in ax.get_ylabel()


@pytest.mark.parametrize("values", [[0.801, 0.803], [0.985, 0.999], [0.0, 0.02], [0.3, 0.9]])
def test_the_metric_axis_holds_the_values_spans_at_least_the_minimum_and_stays_in_zero_one(values):
    low, high = metric_range(values)
    assert low <= min(values) and high >= max(values) and high - low >= MIN_SPAN - 1e-12
    assert 0 <= low and high <= 1
    assert np.isfinite([low, high]).all()


def test_a_seed_mean_outside_its_interval_is_drawn_as_the_table_gives_both():
    ax = metric_vs_fraction_figure([row("baseline", 1.0, 0.70, 0.71, 0.75)], "superdiagnostic", "macro_auroc").axes[0]
    assert drawn(ax) == [([0.0], [0.70], [pytest.approx(0.71)], [pytest.approx(0.75)])]
    assert ax.get_ylim()[0] < 0.70
