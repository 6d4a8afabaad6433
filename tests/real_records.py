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


def write_mimic_layout(shared_data: Path, root: Path, count: int = 3) -> Path:
    """Real PTB-XL 500 Hz signals rewritten into MIMIC-IV-ECG's folder layout, with machine statements."""
    rows, reports = [], []
    for k in range(count):
        source = wfdb.rdrecord(str(shared_data / f"ptbxl-mini/records500/06000/0600{k}_hr"))
        study = 40000000 + k
        folder = root / f"files/p1000/p1000000{k}/s{study}"
        folder.mkdir(parents=True)
        wfdb.wrsamp(str(study), fs=500, units=["mV"] * 12, sig_name=source.sig_name, p_signal=source.p_signal,
                    fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(folder))
        rows.append(f"1000000{k},{study},{study},2180-07-27 09:29:00,files/p1000/p1000000{k}/s{study}/{study}")
        reports.append(f"1000000{k},{study},Sinus rhythm,Normal ECG" if k != 1 else f"1000000{k},{study},Atrial fibrillation,")
    (root / "record_list.csv").write_text("subject_id,study_id,file_name,ecg_time,path\n" + "\n".join(rows) + "\n")
    (root / "machine_measurements.csv").write_text("subject_id,study_id,report_0,report_1\n" + "\n".join(reports) + "\n")
    return root
