import numpy as np
import wfdb

from ecgdist.data.filters import ecgfounder_filter


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
