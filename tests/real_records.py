"""Real PTB-XL 500 Hz records from ../shared/data, read straight from WFDB for model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import wfdb


def ptbxl_500hz_batch(shared_data: Path, count: int = 8) -> torch.Tensor:
    """(count, 12, 5000) float32, ECGFounder-normalised (one z-score per record)."""
    folder = shared_data / "ptbxl-mini" / "records500" / "06000"
    signals = [wfdb.rdrecord(str(folder / f"0600{i}_hr")).p_signal.T for i in range(count)]
    x = np.stack(signals).astype(np.float32)
    x = (x - x.mean(axis=(1, 2), keepdims=True)) / (x.std(axis=(1, 2), keepdims=True) + 1e-8)
    return torch.from_numpy(x)
