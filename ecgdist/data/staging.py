"""``data.stage_dir``: copy each corpus to node-local storage once per node, and read it from there.

Eight GPUs on a node read 2-3 GB/s (docs/scaling.md), more than a shared filesystem gives
one node. At job start every rank asks for the staged copy; a file lock lets the first
rank on the node copy while the others wait. Each shard is hashed while it is copied and
must match the manifest's sha256 (a mismatch stops the job naming the shard, and nothing
half-copied stays); it lands by rename, so a killed copy resumes with the shards that
are there and verified. The manifest is copied last: a staged folder with a manifest is
complete, and a later job on the node skips the copy. The copy's folder name carries the
manifest's checksum, so a changed corpus is staged anew, never confused with the old.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
from pathlib import Path

from ecgdist.data.index import INDEX_DIR
from ecgdist.data.shards import MANIFEST_NAME, CorruptShard, ShardEntry, read_manifest, remember_verified
from ecgdist.files import temp_path_for

log = logging.getLogger(__name__)
LISTING_NAME = "listing.jsonl"  # the input listing slurm/preprocess.sh leaves: large, and not read by training


def stage_corpus(corpus: Path, stage_dir: Path, verified_cache: Path) -> Path:
    """The node-local copy of ``corpus`` under ``stage_dir``, made first if needed."""
    corpus, stage_dir = Path(corpus), Path(stage_dir)
    manifest_bytes = (corpus / MANIFEST_NAME).read_bytes()
    target = stage_dir / f"{corpus.name}-{hashlib.sha256(manifest_bytes).hexdigest()[:16]}"
    stage_dir.mkdir(parents=True, exist_ok=True)
    with open(stage_dir / f"{target.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / MANIFEST_NAME).exists():
            return target
        manifest = read_manifest(corpus)
        target.mkdir(exist_ok=True)
        copied = sum(copy_shard(corpus / entry.file, target / entry.file, entry, verified_cache)
                     for entry in manifest.shards)
        for item in corpus.iterdir():  # the index, label tables, rejections: small, copied as they are
            if item.name == INDEX_DIR or (item.is_file() and item.suffix in (".csv", ".jsonl")
                                          and item.name != LISTING_NAME):
                copy_small(item, target / item.name)
        tmp = temp_path_for(target / MANIFEST_NAME)
        tmp.write_bytes(manifest_bytes)
        os.replace(tmp, target / MANIFEST_NAME)
        log.info("staged %s to %s (%d shards copied, %.1f GB)", corpus, target, copied,
                 sum(s.bytes for s in manifest.shards) / 1e9)
    return target


def copy_shard(source: Path, dest: Path, entry: ShardEntry, verified_cache: Path) -> bool:
    """Copy one shard, hashing as it goes; False when a verified copy is already there."""
    if dest.exists() and dest.stat().st_size == entry.bytes:
        return False  # renamed into place only after its hash matched
    tmp = temp_path_for(dest)
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as src, open(tmp, "wb") as out:
            for block in iter(lambda: src.read(1 << 22), b""):
                digest.update(block)
                out.write(block)
    except OSError as error:  # a full stage_dir: name the staged file, not whatever the caller was reading
        tmp.unlink(missing_ok=True)
        raise OSError(error.errno, f"cannot stage {source} ({error.strerror})", str(dest)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != entry.sha256:
        tmp.unlink()
        raise CorruptShard(f"shard {source} does not match its manifest (sha256) and was not staged; check the "
                           f"corpus with: python -m preprocess verify {source.parent}")
    os.replace(tmp, dest)
    remember_verified(dest, entry, verified_cache)  # hashed just now: the loader need not hash it again
    return True


def copy_small(source: Path, dest: Path) -> None:
    if source.is_dir():
        dest.mkdir(exist_ok=True)
        for item in source.iterdir():
            copy_small(item, dest / item.name)
    elif not source.name.endswith(".tmp"):
        tmp = temp_path_for(dest)
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
