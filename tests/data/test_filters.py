import numpy as np
import pytest
import wfdb

from ecgdist.data.filters import centred_median, ecgfounder_filter


def test_removes_mains_hum_and_baseline_wander_from_a_real_ecg(shared_data):
    x = wfdb.rdrecord(str(shared_data / "ptbxl-mini/records500/06000/06001_hr")).p_signal.T
    t = np.arange(x.shape[1]) / 500.0
    noise = 0.3 * np.sin(2 * np.pi * 50 * t) + 0.8 * np.sin(2 * np.pi * 0.15 * t)
    clean, noisy = ecgfounder_filter(x, 500.0), ecgfounder_filter(x + noise, 500.0)
    residual = np.abs(noisy - clean)[:, 250:-250]  # away from the edges
    assert residual.max() < 0.05 * np.abs(noise).max()
    # The QRS complexes survive: most of the signal's energy inside the band stays.
    assert np.abs(clean).max() > 0.5 * np.abs(x - np.median(x, axis=1, keepdims=True)).max()


def test_skips_the_notch_above_nyquist():
    x = np.random.default_rng(0).normal(size=(12, 1000))
    assert np.isfinite(ecgfounder_filter(x, 100.0)).all()


def released_band(x: np.ndarray, fs: float) -> np.ndarray:
    """Notch and band-pass of util.filter_bandpass in PKUDigitalHealth/ECGFounder, re-stated lead by lead."""
    from scipy.signal import butter, filtfilt, iirnotch

    out = np.empty_like(x)
    for c, lead in enumerate(x):
        b, a = iirnotch(50, 30, fs)
        lead = filtfilt(b, a, lead)
        b, a = butter(N=4, Wn=[0.67, 40], btype="bandpass", fs=fs)
        out[c] = filtfilt(b, a, lead)
    return out


def released_recipe(x: np.ndarray, fs: float) -> np.ndarray:
    """The whole released filter: the band, minus one median pass of int(0.4 fs) + 1 samples (odd, zero ends)."""
    from scipy.signal import medfilt

    band = released_band(x, fs)
    kernel = int(0.4 * fs) + 1
    kernel += kernel % 2 == 0
    return np.stack([lead - medfilt(lead, kernel_size=kernel) for lead in band])


@pytest.mark.parametrize("record", ["06000", "06004", "06009"])
def test_matches_the_released_ecgfounder_filter_within_float16(shared_data, record):
    x = wfdb.rdrecord(str(shared_data / f"ptbxl-mini/records500/06000/{record}_hr")).p_signal.T
    ours, released = ecgfounder_filter(x, 500.0), released_recipe(x, 500.0)
    # What the corpus stores: float16. Both must round to the same stored values (up to one float16 step).
    step = np.spacing(np.abs(released).astype(np.float16)).astype(np.float64)
    assert np.all(np.abs(ours - released) <= step), np.abs(ours - released).max()


def test_the_comparison_tells_the_old_two_pass_chain_apart(shared_data):
    from scipy import ndimage

    x = wfdb.rdrecord(str(shared_data / "ptbxl-mini/records500/06000/06000_hr")).p_signal.T
    band = released_band(x, 500.0)
    old = band - ndimage.median_filter(ndimage.median_filter(band, size=(1, 101), mode="nearest"),
                                       size=(1, 301), mode="nearest")
    step = np.spacing(np.abs(released_recipe(x, 500.0)).astype(np.float16)).astype(np.float64)
    assert (np.abs(old - released_recipe(x, 500.0)) > step).mean() > 0.5


@pytest.mark.filterwarnings("ignore:kernel_size exceeds volume extent")
@pytest.mark.parametrize("samples, kernel", [(5000, 201), (1000, 41), (120, 201), (1, 3)])
def test_the_running_median_is_medfilts_exactly_also_on_records_shorter_than_its_window(shared_data, samples,
                                                                                       kernel):
    from scipy.signal import medfilt

    x = wfdb.rdrecord(str(shared_data / "ptbxl-mini/records500/06000/06004_hr")).p_signal.T[:, :samples]
    x = np.concatenate([x, np.ones_like(x[:1])])  # and a constant lead: every window all ties
    assert np.array_equal(centred_median(x, kernel), np.stack([medfilt(lead, kernel) for lead in x]))
