"""Reading one WFDB record with the checks wfdb itself skips.

``wfdb.rdrecord`` reads a truncated signal file as a cryptic reshape error and never
verifies the header's per-signal checksums, so a header that does not describe its
signal file (wrong lead count, swapped file) reads as garbage. Here each such case is a
``RecordError`` with a reason. The header is parsed once (wfdb's parser is slow); only a
failed read parses it again, to say why.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import wfdb

from ecgdist.data.records import Meta, RawRecord, RecordError

FS_BOUNDS_HZ = (50.0, 20000.0)  # plausible ECG sampling rates: 50 Hz Holter leads to 20 kHz research systems
BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}


def parse_comments(comments: list[str]) -> Meta:
    """Age, sex and Dx codes from header comments (PhysioNet 2021 and PTB Diagnostic style)."""
    meta = Meta()
    for line in comments:
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "age" and re.fullmatch(r"\d+(\.\d+)?", value):
            meta.age = float(value)
        elif key == "sex" and value.lower() in ("female", "f", "male", "m"):
            meta.sex = 0 if value.lower().startswith("f") else 1
        elif key == "dx" and value.lower() != "unknown":
            meta.labels = [code.strip() for code in value.split(",") if code.strip()]
    return meta


def header_lines(record_path: Path) -> list[str]:
    """The header's record and signal lines (comments and blank lines left out)."""
    with open(f"{record_path}.hea", encoding="utf-8", errors="replace") as f:
        return [ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def header_rate(record_path: Path) -> float | None:
    """The sampling rate the header's record line states (None when absent: WFDB's 250 Hz then).

    wfdb reads a rate it cannot parse (``abc``, ``-500``) as its default 250 Hz and turns
    ``0`` into a division by zero, so a wrong header would give a time-stretched signal;
    the text is read here instead, and a rate that is not a plausible ECG rate is refused.
    """
    lines = header_lines(record_path)
    fields = lines[0].split() if lines else []
    if len(fields) < 3:
        return None
    text = fields[2].split("/")[0]
    try:
        fs = float(text)
    except ValueError:
        raise RecordError(f"sampling rate {fields[2]!r} in the header is not a number") from None
    if not FS_BOUNDS_HZ[0] <= fs <= FS_BOUNDS_HZ[1]:
        raise RecordError(f"sampling rate {text} Hz in the header is outside {FS_BOUNDS_HZ[0]:g}-{FS_BOUNDS_HZ[1]:g} Hz, "
                          "the range of ECG recordings")
    return fs


def check_header_gains(record_path: Path) -> None:
    """Refuse a signal line whose gain is not a positive number: wfdb reads ``NaN`` as its default
    200 adu/mV (a silently rescaled lead) and drops the fields after it."""
    for number, line in enumerate(header_lines(record_path)[1:], start=1):
        fields = line.split()
        if len(fields) < 3:
            continue  # no gain field: WFDB's default
        text = re.split(r"[(/]", fields[2])[0]
        try:
            gain = float(text)
        except ValueError:
            gain = math.nan
        if not math.isfinite(gain) or gain < 0:
            lead = fields[8] if len(fields) > 8 else f"on signal line {number}"
            raise RecordError(f"gain {text!r} of lead {lead} in the header is not a positive number")


def _check_signal_files(record_path: Path, header: wfdb.Record) -> None:
    expected: dict[str, float] = {}
    for name, fmt, offset in zip(header.file_name, header.fmt, header.byte_offset or [None] * header.n_sig):
        per_sample = BYTES_PER_SAMPLE.get(str(fmt))
        if per_sample is None:
            continue
        expected[name] = expected.get(name, offset or 0) + per_sample * header.sig_len
    for name in dict.fromkeys(header.file_name):
        path = record_path.parent / name
        if not path.exists():
            raise RecordError(f"missing signal file {name}")
        need = int(np.ceil(expected.get(name, 0)))
        if path.stat().st_size < need:
            raise RecordError(f"signal file {name} is truncated: {path.stat().st_size} bytes, "
                              f"the header describes {need}")


def diagnose(record_path: Path, error: Exception) -> RecordError:
    """The reason a read failed, from the header (parsed only then: wfdb parses headers slowly)."""
    try:
        header = wfdb.rdheader(str(record_path))
    except Exception as header_error:
        return RecordError(f"unreadable header: {header_error}")
    if getattr(header, "seg_name", None):
        return RecordError("multi-segment records are not supported")
    if not header.sig_len:
        return RecordError("header declares no samples")
    try:
        _check_signal_files(record_path, header)
    except RecordError as reason:
        return reason
    return RecordError(f"signal does not match its header: {error}")


def read_wfdb(record_path: str | Path) -> RawRecord:
    """Read ``record_path`` (no extension) as physical units in mV, verifying checksums."""
    record_path = Path(record_path)
    if not Path(f"{record_path}.hea").exists():
        raise RecordError("missing header file")
    header_rate(record_path)  # before wfdb, which would read a bad rate as 250 Hz
    check_header_gains(record_path)  # and a NaN gain as 200 adu/mV
    try:
        record = wfdb.rdrecord(str(record_path), physical=False)
    except Exception as error:
        raise diagnose(record_path, error) from None
    if getattr(record, "seg_name", None) or not record.sig_len:
        raise diagnose(record_path, ValueError("no single-segment signal"))
    if record.checksum:
        actual = record.calc_checksum()
        bad = [name for name, want, got in zip(record.sig_name, record.checksum, actual)
               if (want - got) % 65536]  # headers write them signed, wfdb unsigned
        if bad:
            raise RecordError(f"checksum mismatch in {', '.join(bad)}: the signal file does not match its header")
    signal = record.dac(return_res=64)
    for column, unit in enumerate(record.units or []):
        scale = UNIT_TO_MV.get((unit or "mV").strip().lower())
        if scale is None:
            raise RecordError(f"unknown unit {unit!r} for lead {record.sig_name[column]}")
        signal[:, column] *= scale
    return RawRecord(signal, float(record.fs), list(record.sig_name), parse_comments(record.comments or []))
