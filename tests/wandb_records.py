"""Read back what an offline W&B run wrote (``RUN/wandb/offline-run-*/run-ID.wandb``), for the tests.

wandb no longer ships a Python reader for its transaction log (wandb-core, in Go, writes it): the
file is a 7-byte header (``:W&B``, a magic number, a version) and then LevelDB's log format,
32 KiB blocks of chunks (crc32, length, type: full, first, middle, last), each record a
``wandb_internal_pb2.Record`` protobuf, which wandb does ship.
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path

import pytest

BLOCK, CHUNK_HEADER, FULL, LAST = 32 * 1024, 7, 1, 4
# A run's overrides for W&B in offline mode.
OFFLINE = ["logging.wandb_project=ecgdist-tests", "logging.wandb_mode=offline"]


def same_curves(tensorboard: dict, wandb: dict) -> None:
    """Each TensorBoard scalar is a W&B series with the same (step, value) pairs (TensorBoard keeps float32)."""
    for tag, points in tensorboard.items():
        assert [s for s, _ in wandb[tag]] == [s for s, _ in points], tag
        assert [v for _, v in wandb[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag


def records(path: Path):
    """Every Record in a .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    position, pending = 7, b""
    while position + CHUNK_HEADER <= len(data):
        if BLOCK - position % BLOCK < CHUNK_HEADER:  # a block's tail too short for a chunk header is padding
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + CHUNK_HEADER])
        pending += data[position + CHUNK_HEADER:position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def items(entries) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in entries}


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def read_run(run_dir: Path) -> dict:
    """What the offline runs under ``run_dir`` logged: ``history`` {key: [(step, value)]} (W&B's own
    keys, ``_step``, ``_runtime``..., left out), ``summary`` and ``config`` (the last value of each key),
    the ``ids`` of the runs."""
    history, summary, config, ids = defaultdict(list), {}, {}, []
    for path in offline_runs(run_dir):
        for record in records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                ids.append(record.run.run_id)
                config.update(items(record.run.config.update))
            elif kind == "history":
                for key, value in items(record.history.item).items():
                    if not key.startswith("_"):
                        history[key].append((record.history.step.num, value))
            elif kind == "summary":
                summary.update(items(record.summary.update))
            elif kind == "config":
                config.update(items(record.config.update))
    return {"history": dict(history), "summary": summary, "config": config, "ids": ids}
