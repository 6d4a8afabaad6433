"""The ECGFounder filter chain: 50 Hz notch, 0.67-40 Hz band-pass, median baseline removal.

Zero-phase throughout (filtfilt), so waves do not shift in time. The notch (Q = 30) is
skipped when 50 Hz is above Nyquist; the band-pass is a 4th-order Butterworth in
second-order sections; the baseline is a 0.2 s then 0.6 s median filter, subtracted.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

NOTCH_HZ, NOTCH_Q = 50.0, 30.0
BAND_HZ = (0.67, 40.0)
MEDIAN_SECONDS = (0.2, 0.6)


def odd(n: float) -> int:
    n = max(1, int(round(n)))
    return n if n % 2 else n + 1


def ecgfounder_filter(x: np.ndarray, fs: float) -> np.ndarray:
    """Filter (C, T) along time."""
    if fs / 2 > NOTCH_HZ * 1.05:
        b, a = signal.iirnotch(NOTCH_HZ, NOTCH_Q, fs=fs)
        x = signal.filtfilt(b, a, x, axis=-1)
    high = min(BAND_HZ[1], 0.45 * fs)
    sos = signal.butter(4, [BAND_HZ[0], high], btype="bandpass", fs=fs, output="sos")
    x = signal.sosfiltfilt(sos, x, axis=-1)
    baseline = x
    for seconds in MEDIAN_SECONDS:
        baseline = ndimage.median_filter(baseline, size=(1, odd(seconds * fs)), mode="nearest")
    return x - baseline
