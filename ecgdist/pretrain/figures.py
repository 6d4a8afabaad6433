"""The masked autoencoder's reconstruction picture for TensorBoard, drawn with matplotlib's file backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def reconstruction_figure(signal: np.ndarray, pred: np.ndarray, mask: np.ndarray, patch: int,
                          fluctuated: bool, lead: int = 1, lead_name: str = "II"):
    """One lead of a validation ECG with the MAE's reconstruction of its hidden segments.

    Args:
        signal: (C, L) model input; pred: (N, C * patch) predicted segments; mask: (N,) 1 = hidden.
        fluctuated: predictions are per-segment z-scores (over all leads); they are drawn at
            the segment's own mean and spread so the shape can be compared with the signal.
    """
    C, L = signal.shape
    segments = signal.reshape(C, L // patch, patch)  # (C, N, P)
    recon = pred.reshape(len(mask), C, patch)[:, lead]
    if fluctuated:
        recon = recon * segments.std(axis=(0, 2))[:, None] + segments.mean(axis=(0, 2))[:, None]
    fig, ax = plt.subplots(figsize=(12, 3))
    t = np.arange(L)
    ax.plot(t, signal[lead], color="black", linewidth=0.8, label="signal")
    for n in np.flatnonzero(mask):
        ax.axvspan(n * patch, (n + 1) * patch, color="tab:orange", alpha=0.15, linewidth=0)
        ax.plot(t[n * patch:(n + 1) * patch], recon[n], color="tab:red", linewidth=0.8)
    ax.set_title(f"lead {lead_name}: hidden segments shaded, reconstruction in red")
    ax.set_xlabel("sample")
    fig.tight_layout()
    return fig
