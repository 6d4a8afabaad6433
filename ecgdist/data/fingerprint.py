"""Content fingerprints: the same recording gives the same number, whatever source, id or file format.

A record's fingerprint is a 64-bit BLAKE2b digest of its samples as read from the
source, in physical units rounded to whole microvolts, in the standard lead order, at the
source's own rate (before resampling, filtering or windowing). PTB-XL's WFDB files and the
PhysioNet/CinC 2021 copies of the same ECGs give the same fingerprint; two corpora made
with different recipes from one recording do too. Every window of a record carries its
record's fingerprint. Pre-training uses them to leave out evaluation records, exports
record the set a model was trained on, and fine-tuning refuses weights whose training set
holds its validation or test records.

Where a source holds one ECG in several files (PTB-XL's ``records100`` and ``records500``),
the fingerprint is taken from one fixed file whatever the corpus's rate (PTB-XL: the 500 Hz
file when it exists, the one the PhysioNet/CinC Challenges redistribute), so a 100 Hz
benchmark corpus still matches a Challenge pre-training corpus. ``FINGERPRINT_VERSION``
names this definition; corpora and exports carry it, and older ones are refused with the
command that fingerprints them again.

Content misses a copy that was re-filtered, re-quantised or resampled on its way into
another corpus. Where one public corpus is known to contain another, records also carry
an identity: the hash of a canonical record id (``ptbxl:<ecg_id>`` for PTB-XL's records
and for the PhysioNet/CinC Challenge's ``HR#####`` copies of them), 0 where none is known.
Neither catches a shifted or cropped copy, nor the same patient under another id.

Collisions: with 7 million training records and 22,000 fine-tune records, the chance of
one false match among 64-bit digests is about 1e-8.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from ecgdist.data.records import RawRecord, RecordError
from ecgdist.leads import STANDARD_LEADS, lead_indices

MISSING = np.iinfo(np.int32).min  # a NaN sample
# 1: PTB-XL from whichever file was read; 2: PTB-XL from its 500 Hz file whatever the rate.
FINGERPRINT_VERSION = 2


CHALLENGE_PTBXL = re.compile(r"(?:^|/)HR(\d{5})$")  # PhysioNet/CinC 2020/2021: HR##### is PTB-XL's ecg_id ####


def canonical_id(record_id: str) -> str | None:
    """The id a record has in the corpus it came from first ("ptbxl:17"), where that is known."""
    source, _, rest = record_id.partition(":")
    name = rest.split("#")[0]
    if source == "ptbxl" and name.isdigit():
        return f"ptbxl:{int(name)}"
    challenge = CHALLENGE_PTBXL.search(name) if source in ("physionet2021", "wfdb") else None
    return f"ptbxl:{int(challenge.group(1))}" if challenge else None


def identity_hash(record_id: str) -> int:
    """64-bit hash of the record's canonical id; 0 when it has none."""
    canonical = canonical_id(record_id)
    if canonical is None:
        return 0
    return int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "little") or 1


def record_fingerprint(raw: RawRecord) -> int:
    """The fingerprint of the ECG ``raw`` came from: the one its source took, else of its own samples."""
    return raw.fingerprint if raw.fingerprint is not None else content_fingerprint(raw)


def content_fingerprint(raw: RawRecord) -> int:
    """The record's fingerprint (a uint64 as a Python int)."""
    columns, missing = lead_indices(raw.leads)
    if missing:
        raise RecordError(f"missing standard leads {', '.join(missing)} (has {', '.join(raw.leads)})")
    microvolts = np.rint(np.asarray(raw.signal, dtype=np.float64)[:, columns] * 1000.0)
    samples = np.where(np.isnan(microvolts), MISSING, microvolts).astype("<i4")
    digest = hashlib.blake2b(digest_size=8)
    digest.update(",".join(STANDARD_LEADS).encode())
    digest.update(np.ascontiguousarray(samples).tobytes())
    return int.from_bytes(digest.digest(), "little")
