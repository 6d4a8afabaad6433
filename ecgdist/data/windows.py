"""From a raw record to training windows: standard leads, rate, filter, fixed-length windows.

Records longer than a window become consecutive windows (a trailing remainder shorter
than a window is dropped); a shorter record is zero-padded and flagged. Missing samples
(NaN) are interpolated and flagged, unless a lead has none at all or too many are
missing, which rejects the record.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

from ecgdist.data.filters import ecgfounder_filter
from ecgdist.data.records import RawRecord, RecordError
from ecgdist.data.shards import FLAG_FLAT_LEAD, FLAG_NAN, FLAG_PADDED, FLAG_RESAMPLED, Recipe
from ecgdist.leads import STANDARD_LEADS, lead_indices

MAX_NAN_SHARE = 0.1
FLAT_PTP_MV = 1e-3
FLOAT16_LIMIT_MV = 6e4


def fill_missing(x: np.ndarray) -> bool:
    """Interpolate NaN samples in place along time; returns whether there were any."""
    missing = np.isnan(x)
    if not missing.any():
        return False
    empty = [STANDARD_LEADS[i] for i in np.flatnonzero(missing.all(axis=1))]
    if empty:
        raise RecordError(f"no valid samples (all NaN) in lead {', '.join(empty)}")
    share = missing.mean()
    if share > MAX_NAN_SHARE:
        raise RecordError(f"{share:.0%} of samples are missing (NaN); at most {MAX_NAN_SHARE:.0%} are repaired")
    t = np.arange(x.shape[1])
    for lead in np.flatnonzero(missing.any(axis=1)):
        gap = missing[lead]
        x[lead, gap] = np.interp(t[gap], t[~gap], x[lead, ~gap])
    return True


def resample(x: np.ndarray, fs: float, rate_hz: int) -> np.ndarray:
    """Anti-aliased polyphase resampling along time."""
    ratio = Fraction(rate_hz) / Fraction(fs).limit_denominator(1000)
    return signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)


def make_windows(raw: RawRecord, recipe: Recipe) -> list[tuple[np.ndarray, int]]:
    """(12, samples) float32 windows in mV, each with its quality flags."""
    columns, missing = lead_indices(raw.leads)
    if missing:
        raise RecordError(f"missing standard leads {', '.join(missing)} (has {', '.join(raw.leads)})")
    x = np.ascontiguousarray(raw.signal[:, columns].T, dtype=np.float64)
    if x.shape[1] == 0:
        raise RecordError("record has no samples")
    flags = FLAG_NAN if fill_missing(x) else 0
    if abs(raw.fs - recipe.rate_hz) > 1e-6:
        x = resample(x, raw.fs, recipe.rate_hz)
        flags |= FLAG_RESAMPLED
    if recipe.filter == "ecgfounder":
        x = ecgfounder_filter(x, recipe.rate_hz)
    if np.abs(x).max() > FLOAT16_LIMIT_MV:
        raise RecordError(f"amplitude {np.abs(x).max():.3g} mV is implausible (unit error?)")
    n = recipe.samples
    if x.shape[1] < n:
        x = np.pad(x, ((0, 0), (0, n - x.shape[1])))
        flags |= FLAG_PADDED
    windows = []
    for start in range(0, x.shape[1] - n + 1, n):
        window = x[:, start:start + n].astype(np.float32)
        flat = np.ptp(window, axis=1) < FLAT_PTP_MV
        windows.append((window, flags | (FLAG_FLAT_LEAD if flat.any() else 0)))
    return windows
