"""``python -m preprocess simulate ptbxl DIR``: a synthetic 12-lead corpus in PTB-XL's layout.

For the demo when no real data can be had (offline, no DEMO_DATA). Beats are sums of
Gaussian P, Q, R, S and T waves projected onto the 12 leads; the labels change the
signal in learnable ways: heart rate (SR, SBRAD, STACH), tall lateral R waves (LVH) and
deep inferior Q waves (IMI). A ``SIMULATED`` file marks the folder; preprocessing
carries the mark into the corpus manifest and every later output shows it. Its own
small statements table stands in for PTB-XL's.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import wfdb

from ecgdist.leads import STANDARD_LEADS

MARKER = "SIMULATED"
FS_HZ, SECONDS = 500, 10
STATEMENTS = [  # code, description, diagnostic, form, rhythm, diagnostic_class, diagnostic_subclass
    ("NORM", "normal ECG (simulated)", 1, 0, 0, "NORM", "NORM"),
    ("IMI", "inferior myocardial infarction (simulated)", 1, 0, 0, "MI", "IMI"),
    ("LVH", "left ventricular hypertrophy (simulated)", 1, 0, 0, "HYP", "LVH"),
    ("SR", "sinus rhythm (simulated)", 0, 0, 1, "", ""),
    ("SBRAD", "sinus bradycardia (simulated)", 0, 0, 1, "", ""),
    ("STACH", "sinus tachycardia (simulated)", 0, 0, 1, "", ""),
]
# Per lead: gain of the depolarisation (QRS) and repolarisation (P, T) patterns.
QRS_GAIN = np.array([0.8, 1.2, 0.5, -1.0, 0.3, 0.8, -0.6, -0.2, 0.5, 1.2, 1.4, 1.1])
WAVE_GAIN = np.array([0.6, 1.0, 0.4, -0.8, 0.2, 0.7, 0.2, 0.5, 0.7, 0.8, 0.7, 0.6])
INFERIOR = [STANDARD_LEADS.index(lead) for lead in ("II", "III", "aVF")]
LATERAL = [STANDARD_LEADS.index(lead) for lead in ("I", "aVL", "V5", "V6")]


def beat(t: np.ndarray, width: float) -> dict[str, np.ndarray]:
    """The waves of one beat centred at t = 0 (seconds), as separate components."""
    g = lambda centre, sigma, height: height * np.exp(-((t - centre * width) ** 2) / (2 * (sigma * width) ** 2))  # noqa: E731
    return {"p": g(-0.2, 0.025, 0.15), "q": g(-0.03, 0.01, -0.1), "r": g(0.0, 0.012, 1.0),
            "s": g(0.03, 0.012, -0.25), "t": g(0.3, 0.05, 0.3)}


def simulate_record(rng: np.random.Generator, rhythm: str, diagnosis: str) -> np.ndarray:
    """(5000, 12) in mV."""
    rate = {"SR": rng.uniform(60, 95), "SBRAD": rng.uniform(42, 56), "STACH": rng.uniform(105, 140)}[rhythm]
    t = np.arange(FS_HZ * SECONDS) / FS_HZ
    signal = np.zeros((len(t), 12))
    qrs_gain, q_gain = QRS_GAIN * rng.uniform(0.8, 1.2), np.ones(12)
    if diagnosis == "LVH":
        qrs_gain[LATERAL] *= 2.5
    if diagnosis == "IMI":
        q_gain[INFERIOR] = 8.0
    onset, period = rng.uniform(0.1, 0.6), 60.0 / rate
    while onset < SECONDS + 0.5:
        waves = beat(t - onset, np.sqrt(period))
        signal += np.outer(waves["p"] + waves["t"], WAVE_GAIN)
        signal += np.outer(waves["r"] + waves["s"], qrs_gain) + np.outer(waves["q"], QRS_GAIN * q_gain)
        onset += period * rng.normal(1.0, 0.03)
    wander = 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6.3))
    return signal + wander[:, None] + rng.normal(0, 0.02, signal.shape)


def simulate_ptbxl(out: Path, records: int = 600, seed: int = 0) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with open(out / "scp_statements.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["", "description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"])
        writer.writerows(STATEMENTS)
    rows = []
    for ecg_id in range(1, records + 1):
        rhythm = str(rng.choice(["SR", "SBRAD", "STACH"], p=[0.6, 0.2, 0.2]))
        diagnosis = str(rng.choice(["NORM", "IMI", "LVH"], p=[0.6, 0.2, 0.2]))
        stem = f"records500/{(ecg_id // 1000) * 1000:05d}/{ecg_id:05d}_hr"
        (out / stem).parent.mkdir(parents=True, exist_ok=True)
        wfdb.wrsamp(Path(stem).name, fs=FS_HZ, units=["mV"] * 12, sig_name=list(STANDARD_LEADS),
                    p_signal=simulate_record(rng, rhythm, diagnosis), fmt=["16"] * 12, adc_gain=[1000.0] * 12,
                    baseline=[0] * 12, write_dir=str((out / stem).parent))
        rows.append({"ecg_id": ecg_id, "patient_id": float(ecg_id), "age": float(rng.integers(20, 90)),
                     "sex": int(rng.integers(0, 2)), "scp_codes": str({diagnosis: 100.0, rhythm: 0.0}),
                     "strat_fold": 1 + ecg_id % 10, "filename_lr": stem.replace("500", "100").replace("_hr", "_lr"),
                     "filename_hr": stem})
    with open(out / "ptbxl_database.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / MARKER).write_text("This folder holds simulated ECGs made by ecgdist, not real recordings.\n")
    return out
