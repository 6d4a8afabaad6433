"""A map-style dataset over a shard corpus that reads whole batches in few large reads.

Records are addressed by a global index (shard order, then row); the corpus is located
from the manifest alone, so opening millions of records costs no per-record I/O.
``__getitems__`` (which DataLoader calls with a whole batch of indices) groups a batch
by shard and reads each shard's span once. Shards are memory-mapped at the signals'
file offset (the format stores them contiguous and uncompressed), falling back to h5py
otherwise. Open handles live per process (re-opened after fork, never pickled) in a
bounded LRU cache, so memory stays bounded per worker under ``fork`` and ``spawn``.
Every shard's size is checked against the manifest when the corpus opens (one stat each),
and its sha256 before its first read on a machine (remembered per node, see
``shards.verified_once``): a truncated or modified shard stops the run naming its path.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import torch
from scipy import sparse
from torch.utils.data import Dataset

from ecgdist.data.shards import SIGNALS, CorruptShard, Manifest, read_manifest, verified_once, verify_shards
from ecgdist.data.transforms import Transform

# Where each machine remembers which shards it has checked in full (ECGDIST_VERIFIED_CACHE to move it).
VERIFIED_CACHE = Path(os.environ.get("ECGDIST_VERIFIED_CACHE", Path(tempfile.gettempdir()) / "ecgdist-verified"))


class ShardCorpus:
    """Where each record of a corpus lives; opens shards lazily, per process."""

    def __init__(self, path: str | os.PathLike, max_open_shards: int = 128) -> None:
        self.path = Path(path)
        self.manifest: Manifest = read_manifest(self.path)
        wrong = verify_shards(self.path, self.manifest, content=False)  # sizes: one stat per shard
        if wrong:
            raise CorruptShard(f"corpus {self.path}: {len(wrong)} shards do not match the manifest ({'; '.join(wrong[:3])})"
                               f"; check it with: python -m preprocess verify {self.path}")
        counts = np.array([s.records for s in self.manifest.shards], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        self.max_open_shards = max_open_shards
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()
        self._layout: dict[int, tuple | None] = {}  # shard -> (offset, shape, dtype) of its signals, once checked
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self.starts[-1])

    def locate(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shard = np.searchsorted(self.starts, index, side="right") - 1
        return shard, index - self.starts[shard]

    def signals(self, shard: int):
        """The shard's (N, C, L) signals: a read-only memmap, or an h5py dataset."""
        if self._pid != os.getpid():  # inherited through fork: never share handles
            self._open.clear()
            self._pid = os.getpid()
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        path = self.path / self.manifest.shards[shard].file
        if shard not in self._layout:  # first visit in this process: check it, find where its samples lie
            verified_once(path, self.manifest.shards[shard], VERIFIED_CACHE)
            with h5py.File(path, "r") as f:
                dset = f[SIGNALS]
                offset = dset.id.get_offset()
                plain = dset.chunks is None and dset.compression is None and offset is not None
                self._layout[shard] = (offset, dset.shape, dset.dtype) if plain else None
        layout = self._layout[shard]
        if layout is not None:  # reopening a visited shard is one mmap, no HDF5 parsing
            offset, shape, dtype = layout
            # A plain ndarray view: np.memmap's subclass hooks cost time on every index.
            array = np.asarray(np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape))
        else:
            array = h5py.File(path, "r")[SIGNALS]
        self._open[shard] = array
        if len(self._open) > self.max_open_shards:
            self._open.popitem(last=False)
        return array

    def read(self, index: np.ndarray) -> np.ndarray:
        """Signals of the given global indices, in that order, in the storage dtype (B, C, L)."""
        shard, row = self.locate(np.asarray(index, dtype=np.int64))
        first = self.signals(int(shard[0])) if len(index) else np.empty((0, 0, 0), np.float32)
        shards = np.unique(shard)
        if len(shards) == 1 and isinstance(first, np.ndarray):  # the usual batch: one gather
            return first[row]  # fancy indexing: ~3x faster than np.take(..., out=) here
        out = np.empty((len(index), *first.shape[1:]), dtype=first.dtype)
        for s in shards:
            where = np.flatnonzero(shard == s)
            rows = row[where]
            lo, hi = int(rows.min()), int(rows.max()) + 1
            out[where] = self.signals(int(s))[lo:hi][rows - lo]  # one read of the shard's span
        return out

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state


class ShardDataset(Dataset):
    """Records ``indices`` of a corpus with their targets, transformed per batch.

    Args:
        corpus: the ``ShardCorpus`` (or its path).
        indices: global record indices this dataset serves (all records when None).
        targets: (len(indices), K) multi-hot targets as a sparse matrix, or None.
        transform: the batch ``Transform``.
        seed: seed of the random crops and augmentations, mixed with the batch's positions so
            that a batch is transformed the same way wherever and whenever it is read.
    """

    def __init__(self, corpus: ShardCorpus | str | os.PathLike, indices: np.ndarray | None = None,
                 targets: sparse.csr_matrix | None = None, transform: Transform | None = None,
                 seed: int = 0) -> None:
        self.corpus = corpus if isinstance(corpus, ShardCorpus) else ShardCorpus(corpus)
        self.indices = np.arange(len(self.corpus)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.targets = None if targets is None else sparse.csr_matrix(targets, dtype=np.float32)
        if self.targets is not None and self.targets.shape[0] != len(self.indices):
            raise ValueError(f"{self.targets.shape[0]} target rows for {len(self.indices)} records")
        self.transform, self.seed = transform or Transform(), seed

    def __len__(self) -> int:
        return len(self.indices)

    def shards_of(self) -> np.ndarray:
        """Shard of each position, for locality-aware sampling."""
        return self.corpus.locate(self.indices)[0]

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        positions = np.asarray(positions, dtype=np.int64)
        rng = np.random.default_rng([self.seed, *positions.tolist()])
        signal = self.transform(self.corpus.read(self.indices[positions]), rng)
        batch = {"signal": torch.from_numpy(np.ascontiguousarray(signal)), "index": torch.from_numpy(positions)}
        if self.targets is not None:
            batch["target"] = torch.from_numpy(self.targets[positions].toarray())
        return batch

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([position]).items()}


def keep_batch(batch: dict) -> dict:
    """Collate for ``__getitems__`` output, which is already a batch."""
    return batch
