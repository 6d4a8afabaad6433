"""Durable file writes and checksums, shared by every stage.

A reader must never see half a file: writes go to a temporary file unique to the writer,
are flushed to disk, then renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file unique to this writer, synced, then rename: job-array tasks may
    write the same file (recipe, manifest) at once, and must not rename each other's."""
    with tempfile.NamedTemporaryFile("wb", dir=Path(path).parent, prefix=Path(path).name + ".", suffix=".tmp",
                                     delete=False) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` through a temporary file unique to this writer, then rename: a crash or a
    stale twin of the job never leaves half a weights or state file under the real name."""
    import torch

    tmp = temp_path_for(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def temp_path_for(path: Path) -> Path:
    """A temporary file beside ``path``, unique to this writer: two writers of the same file (job-array
    tasks, a requeued job and its stale twin) never rename each other's half-written bytes."""
    path = Path(path)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(handle)
    return Path(name)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (sha256, md5, ...), read in 4 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return file_digest(path, "sha256")
