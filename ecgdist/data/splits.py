"""A held-out slice of a corpus for pre-training validation, grouped by patient.

Membership is a hash of (seed, patient id), so a patient's records are all on one side
and the split does not depend on shard layout, worker count or Python's hash salt.
Records without a patient id are grouped by their record (windows of one recording
stay together).
"""

from __future__ import annotations

import zlib

import numpy as np


def holdout_mask(patient_ids: np.ndarray, record_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    groups = [p if p else r.split("#")[0] for p, r in zip(patient_ids, record_ids)]
    buckets = np.fromiter((zlib.crc32(f"{seed}:{g}".encode()) % 10_000 for g in groups), dtype=np.int64,
                          count=len(groups))
    return buckets < int(round(fraction * 10_000))
