"""``python -m ecgdist.predict MODEL RECORD --explain OUT.png``: what the model looked at.

The record's first window, as the model sees it (its recipe, crop and normalisation), goes
through Captum's integrated gradients (32 steps from an all-zero input, the model's own
"no signal") for each of the ``top`` classes it scores highest. The picture is the ECG as a
cardiologist reads it, on paper grid at 25 mm/s and 10 mm/mV (1 mm minor, 5 mm major
squares), one panel a lead (limb leads left, chest leads right), the window's signal in
mV, with each class's attribution magnitude (smoothed over 40 ms) shaded behind the trace
in that class's colour, the classes' names and probabilities in the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MM_PER_S, MM_PER_MV = 25.0, 10.0  # the standard paper speed and gain
COLOURS = ("#d62728", "#1f77b4", "#2ca02c")  # one a class, behind the black trace
STEPS = 32  # integrated-gradients steps: Captum's completeness error falls below a few % here


@dataclass
class Explanation:
    signal: np.ndarray  # (leads, samples) in mV: what is drawn
    attributions: dict[str, np.ndarray]  # class -> (leads, samples) integrated gradients
    probabilities: dict[str, float]  # of the classes explained
    leads: list[str]
    rate_hz: int


def explain_window(classifier, window_mv: np.ndarray, top: int = 2) -> Explanation:
    """Integrated gradients of the ``top`` classes ``classifier`` (finetune/predict.Classifier) scores
    highest on one window (12, samples) in mV."""
    from captum.attr import IntegratedGradients

    x = torch.from_numpy(classifier.transform(window_mv[None].astype(np.float32), np.random.default_rng(0)))
    with torch.no_grad():
        probabilities = torch.sigmoid(classifier.model(x))[0].numpy()
    chosen = np.argsort(-probabilities)[:top]
    gradients = IntegratedGradients(classifier.model)
    attributions = {}
    for k in chosen:
        values = gradients.attribute(x, baselines=torch.zeros_like(x), target=int(k), n_steps=STEPS,
                                     internal_batch_size=8)
        attributions[classifier.classes[k]] = values[0].detach().numpy()
    leads = list(classifier.cfg.data.leads)
    lead_rows = [classifier.recipe.leads.index(lead) for lead in leads]
    return Explanation(window_mv[lead_rows, :x.shape[-1]], attributions,
                       {classifier.classes[k]: float(probabilities[k]) for k in chosen}, leads,
                       classifier.recipe.rate_hz)


def shading(values: np.ndarray, rate_hz: int) -> np.ndarray:
    """|attribution| smoothed over 40 ms (a sample's gradient is spiky; a reader sees waves) and scaled
    to [0, 1] by its 99th percentile over all leads, so that a few extreme samples do not wash out the rest."""
    width = max(1, int(0.04 * rate_hz))
    kernel = np.ones(width) / width
    smooth = np.stack([np.convolve(np.abs(lead), kernel, mode="same") for lead in values])
    return np.clip(smooth / (np.percentile(smooth, 99) or 1.0), 0, 1)


def draw(explanation: Explanation, title: str):
    """The figure: a lead a panel on ECG paper (limb leads left, chest leads right), attributions
    shaded behind the trace."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap, to_rgb

    signal, rate, leads = explanation.signal, explanation.rate_hz, explanation.leads
    seconds = signal.shape[1] / rate
    t = np.arange(signal.shape[1]) / rate
    span = max(2.0, float(np.ceil(np.ptp(signal, axis=1).max() * 2) / 2) + 0.5)  # mV a panel, a multiple of 0.5
    columns = 2 if len(leads) % 2 == 0 and len(leads) > 2 else 1
    rows = len(leads) // columns
    fig, axes = plt.subplots(rows, columns, squeeze=False, layout="compressed",  # packs fixed-aspect panels
                             figsize=(columns * seconds * MM_PER_S / 25.4 + 0.6, rows * span * MM_PER_MV / 25.4 + 0.9))
    shades = {name: shading(values, rate) for name, values in explanation.attributions.items()}
    for index, lead in enumerate(leads):
        ax = axes[index % rows, index // rows]
        centre = float(np.median(signal[index]))
        low, high = centre - span / 2, centre + span / 2
        for k, (name, strength) in enumerate(shades.items()):
            colour = to_rgb(COLOURS[k])
            cmap = LinearSegmentedColormap.from_list(name, [(*colour, 0.0), (*colour, 0.6)])
            ax.imshow(strength[index][None], aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest",
                      extent=(0, seconds, low, high), zorder=1)
        ax.plot(t, signal[index], color="black", linewidth=0.7, zorder=3)
        ax.set_xticks(np.arange(0, seconds + 1e-9, 0.2))
        ax.set_xticks(np.arange(0, seconds + 1e-9, 0.04), minor=True)
        ax.set_yticks(np.arange(np.ceil(low / 0.5) * 0.5, high + 1e-9, 0.5))
        ax.set_yticks(np.arange(np.ceil(low / 0.1) * 0.1, high + 1e-9, 0.1), minor=True)
        ax.grid(which="major", color="#e8a0a0", linewidth=0.6, zorder=0)
        ax.grid(which="minor", color="#f6dada", linewidth=0.3, zorder=0)
        ax.set_xlim(0, seconds)
        ax.set_ylim(low, high)
        ax.set_aspect(MM_PER_MV / MM_PER_S)  # 1 mV is 10 mm when 1 s is 25 mm
        ax.tick_params(which="both", length=0, labelleft=False, labelbottom=False)
        ax.text(0.01, 0.92, lead, transform=ax.transAxes, fontsize=9, fontweight="bold", va="top", zorder=4)
    shown = ", ".join(f"{name} {p:.2f}" for name, p in explanation.probabilities.items())
    keys = ", ".join(f"{name} {('red', 'blue', 'green')[k]}" for k, name in enumerate(explanation.attributions))
    fig.suptitle(f"{title}: {shown}\nintegrated gradients shaded ({keys}); 25 mm/s, 10 mm/mV, {seconds:g} s",
                 fontsize=9)
    return fig


def explain_record(classifier, record: str | Path, out: str | Path, top: int = 2) -> Explanation:
    """Explain ``record``'s first window and write the picture to ``out``."""
    from ecgdist.data.wfdb_io import read_wfdb
    from ecgdist.data.windows import make_windows

    windows = make_windows(read_wfdb(str(record).removesuffix(".hea")), classifier.recipe)
    explanation = explain_window(classifier, windows[0][0], top)
    note = f", window 1 of {len(windows)}" if len(windows) > 1 else ""
    fig = draw(explanation, f"{Path(str(record)).name}{note}")
    fig.savefig(out, dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt  # (after draw has chosen the file backend)

    plt.close(fig)  # pyplot keeps every figure alive until closed
    return explanation
