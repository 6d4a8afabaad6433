"""A map-style dataset over a shard corpus that reads whole batches in few large reads.

Records are addressed by a global index (shard order, then row; several corpora joined
end to end count on across them); the corpus is located from the manifest alone, so
opening millions of records costs no per-record I/O.
``__getitems__`` (which DataLoader calls with a whole batch of indices) groups a batch
by shard and reads each shard's span once. Shards are memory-mapped at the signals'
file offset (the format stores them contiguous and uncompressed), falling back to h5py
otherwise. Open handles live per process (re-opened after fork, never pickled) in a
bounded LRU cache, so memory stays bounded per worker under ``fork`` and ``spawn``; where a
shard's samples lie is remembered after its first visit, so re-opening it (batches draw
blocks from many shards) is one ``mmap``.
Every shard's size is checked against the manifest when the corpus opens (one stat each),
and its sha256 before its first read on a machine (remembered per node, see
``shards.verified_once``): a truncated or modified shard stops the run naming its path.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch
from scipy import sparse
from torch.utils.data import Dataset

from ecgdist.data.shards import (
    SIGNALS,
    CorruptShard,
    Manifest,
    corrupt_shard,
    count_problem,
    read_manifest,
    verified_once,
    verify_shards,
)
from ecgdist.data.transforms import Transform

def verified_cache() -> Path:
    """Where each machine remembers which shards it has checked in full (ECGDIST_VERIFIED_CACHE to
    move it), read when used."""
    return Path(os.environ.get("ECGDIST_VERIFIED_CACHE", Path(tempfile.gettempdir()) / "ecgdist-verified"))


# Recipe fields every corpus of one run must share: the model sees one kind of input.
SHARED_RECIPE = ("rate_hz", "seconds", "leads", "dtype", "filter")


class ShardCorpus:
    """Where each record of one corpus, or of several joined end to end, lives; opens shards
    lazily, per process. Records and shards are numbered across the corpora in the order given."""

    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], max_open_shards: int = 128) -> None:
        self.paths = [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        self.manifests: list[Manifest] = [read_manifest(p) for p in self.paths]
        for path, manifest in zip(self.paths, self.manifests):
            wrong = verify_shards(path, manifest, content=False)  # sizes: one stat per shard
            if wrong:
                raise CorruptShard(f"corpus {path}: {len(wrong)} shards do not match the manifest "
                                   f"({'; '.join(wrong[:3])}); check it with: python -m preprocess verify {path}")
        check_recipes_agree(self.paths, self.manifests)
        self.shard_files = [path / entry.file for path, m in zip(self.paths, self.manifests) for entry in m.shards]
        self.shard_entries = [entry for m in self.manifests for entry in m.shards]
        self.corpus_of_shard = np.repeat(np.arange(len(self.paths)), [len(m.shards) for m in self.manifests])
        counts = np.array([s.records for s in self.shard_entries], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        self.max_open_shards = max_open_shards
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()
        self._layout: dict[int, tuple | None] = {}  # shard -> (offset, shape, dtype) of its signals, once checked
        self._pid = os.getpid()

    @property
    def path(self) -> Path:
        """The corpus's folder (one corpus only)."""
        return self._single(self.paths)

    @property
    def manifest(self) -> Manifest:
        """The corpus's manifest (one corpus only)."""
        return self._single(self.manifests)

    @staticmethod
    def _single(items: list):
        if len(items) != 1:
            raise ValueError(f"{len(items)} corpora joined here; ask for .paths / .manifests")
        return items[0]

    def corpus_of(self, index: np.ndarray) -> np.ndarray:
        """Which of the joined corpora each global record index belongs to."""
        return self.corpus_of_shard[self.locate(index)[0]]

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
        path = self.shard_files[shard]
        if shard not in self._layout:  # first visit in this process: check it, find where its samples lie
            verified_once(path, self.shard_entries[shard], verified_cache())
            with h5py.File(path, "r") as f:
                dset = f[SIGNALS]
                problem = count_problem(len(dset), self.shard_entries[shard])
                if problem:
                    raise corrupt_shard(path, problem)
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
        """Signals of the given global indices, in that order, in the storage dtype (B, C, L).

        Consecutive rows of one shard (a sampler's block) are copied as one slice: a batch
        drawn from several shards costs one pass over its bytes, not a gather and a scatter."""
        shard, row = self.locate(np.asarray(index, dtype=np.int64))
        if not len(index):
            return np.empty((0, 0, 0), np.float32)
        first = self.signals(int(shard[0]))
        out = np.empty((len(index), *first.shape[1:]), dtype=first.dtype)
        breaks = (np.flatnonzero((np.diff(shard) != 0) | (np.diff(row) != 1)) + 1).tolist()
        for start, stop in zip([0, *breaks], [*breaks, len(index)]):
            first_row = int(row[start])
            out[start:stop] = self.signals(int(shard[start]))[first_row:first_row + stop - start]
        return out

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state


def check_recipes_agree(paths: list[Path], manifests: list[Manifest]) -> None:
    """Joined corpora must share rate, window, leads, dtype and filter; name the first pair that does not."""
    first = manifests[0].recipe.to_dict()
    for path, manifest in zip(paths[1:], manifests[1:]):
        other = manifest.recipe.to_dict()
        for key in SHARED_RECIPE:
            if other[key] != first[key]:
                raise ValueError(f"corpora {paths[0]} and {path} were made with different recipes: {key} is "
                                 f"{first[key]} and {other[key]}; preprocess them alike to train on both")


class ShardDataset(Dataset):
    """Records ``indices`` of a corpus with their targets, transformed per batch.

    Args:
        corpus: the ``ShardCorpus`` (or its path).
        indices: global record indices this dataset serves (all records when None).
        targets: (len(indices), K) multi-hot targets as a sparse matrix, or None.
        target_mask: (corpora, K) 1 where a corpus annotates a label: a batch then carries each
            record's row as ``target_mask``, for a loss over only the labels its corpus looked for.
        transform: the batch ``Transform``.
        seed: seed of the random crops and augmentations, mixed with the batch's positions so
            that a batch is transformed the same way wherever and whenever it is read.
        device_transform: hand batches over as float16 (cropped, leads chosen) with their
            augmentation draws; ``to_device`` finishes them where training runs. Off, the loader
            finishes them (float32) itself.
    """

    def __init__(self, corpus: ShardCorpus | str | os.PathLike, indices: np.ndarray | None = None,
                 targets: sparse.csr_matrix | None = None, transform: Transform | None = None,
                 seed: int = 0, target_mask: np.ndarray | None = None, device_transform: bool = False) -> None:
        self.corpus = corpus if isinstance(corpus, ShardCorpus) else ShardCorpus(corpus)
        self.indices = np.arange(len(self.corpus)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.targets = None if targets is None else sparse.csr_matrix(targets, dtype=np.float32)
        if self.targets is not None and self.targets.shape[0] != len(self.indices):
            raise ValueError(f"{self.targets.shape[0]} target rows for {len(self.indices)} records")
        self.transform, self.seed, self.device_transform = transform or Transform(), seed, device_transform
        self.target_mask = None if target_mask is None else np.asarray(target_mask, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.indices)

    def shards_of(self) -> np.ndarray:
        """Shard of each position, for locality-aware sampling."""
        return self.corpus.locate(self.indices)[0]

    def corpora_of(self) -> np.ndarray:
        """Which joined corpus each position comes from, for per-corpus sampling weights."""
        return self.corpus.corpus_of(self.indices)

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        positions = np.asarray(positions, dtype=np.int64)
        rng = np.random.default_rng([self.seed, *positions.tolist()])
        raw = self.corpus.read(self.indices[positions])
        if self.device_transform:
            signal, draws = self.transform.select(raw, rng)
            batch = {"signal": torch.from_numpy(signal), "index": torch.from_numpy(positions)}
            if "scale" in draws:
                batch["scale"] = torch.from_numpy(draws["scale"])
            if "noise_seed" in draws:
                batch["noise_seed"] = draws["noise_seed"]
        else:
            batch = {"signal": torch.from_numpy(self.transform(raw, rng)), "index": torch.from_numpy(positions)}
        if self.targets is not None:
            batch["target"] = torch.from_numpy(self.targets[positions].toarray())
        if self.target_mask is not None:
            batch["target_mask"] = torch.from_numpy(self.target_mask[self.corpus.corpus_of(self.indices[positions])])
        return batch

    def to_device(self, batch: dict, device: torch.device | str) -> dict:
        """The batch's tensors on ``device``; a float16 batch (``device_transform``) finished there."""
        moved = {k: v.to(device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        if self.device_transform:
            moved["signal"] = self.transform.finish(moved["signal"], moved.pop("scale", None), batch.get("noise_seed"))
        return moved

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        return {k: v[0] if torch.is_tensor(v) else v for k, v in self.__getitems__([position]).items()}


def keep_batch(batch: dict) -> dict:
    """Collate for ``__getitems__`` output, which is already a batch."""
    return batch
