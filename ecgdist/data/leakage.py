"""Which records a model saw: evaluation records left out of pre-training, and overlap found by content.

Everything here compares content fingerprints (data/fingerprint.py), never ids, so a
record that reaches two corpora through different sources is still recognised. Sets are
sorted uint64 arrays: membership of 22,000 fine-tune records in a 7-million-record
training set is one binary search per record (``np.searchsorted``; measured in
docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgdist.data.index import read_index
from ecgdist.data.shards import MANIFEST_NAME, read_manifest, read_metadata


def members(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Which ``values`` are in ``sorted_set`` (sorted, unique): a binary search each, no sort of ``values``."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    where = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[where] == values


def first_copies(fingerprints: list[np.ndarray]) -> np.ndarray:
    """Over corpora joined end to end (one fingerprint array each): False for a row whose record
    an earlier corpus already holds, so a record shared by two corpora (PTB-XL and PhysioNet 2021)
    is trained on once, as the first corpus listed has it. Windows of one record within a corpus
    share a fingerprint and are all kept."""
    seen, keep = np.empty(0, np.uint64), []
    for values in fingerprints:
        keep.append(~members(values, seen))
        seen = np.union1d(seen, values)
    return np.concatenate(keep) if keep else np.empty(0, bool)


class NoEvaluationRecords(ValueError):
    """``exclude_from`` names a corpus without records in the folds to leave out: nothing could be excluded."""


def evaluation_sets(corpus: str | os.PathLike, folds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique fingerprints and identities (0 left out) of the records in ``folds`` of ``corpus``."""
    index = read_index(corpus)
    chosen = np.isin(index.fold, folds)
    if not chosen.any():
        raise NoEvaluationRecords(f"{corpus} has no records in folds {', '.join(map(str, folds))}: leaving them out "
                                  "would leave out nothing (is it the evaluation corpus? see data.exclude_folds)")
    identities = np.unique(index.identity[chosen])
    return np.unique(index.fingerprints(corpus)[chosen]), identities[identities != 0]


def fingerprint_set_sha256(fingerprints) -> str:
    """Checksum of a sorted fingerprint set as an export stores it (a tensor or array of 64-bit values)."""
    values = np.ascontiguousarray(fingerprints.numpy() if hasattr(fingerprints, "numpy") else fingerprints)
    return hashlib.sha256(values.view(np.uint64).tobytes()).hexdigest()


def manifest_sha256(corpus: str | os.PathLike) -> str:
    return hashlib.sha256((Path(corpus) / MANIFEST_NAME).read_bytes()).hexdigest()


@dataclass
class TrainingSet:
    """A pre-training corpus after leaving out the records that match an evaluation corpus, by content
    or by identity."""

    keep: np.ndarray  # (records,) bool: rows of the corpus that pre-training may use
    all_fingerprints: np.ndarray  # of every row
    all_identities: np.ndarray  # of every row, 0 where none is known

    @classmethod
    def build(cls, corpora: str | os.PathLike | list, exclude_from: str = "",
              exclude_folds: list[int] = ()) -> "TrainingSet":
        """Over one corpus or several joined end to end (rows in that order)."""
        corpora = [corpora] if isinstance(corpora, (str, os.PathLike)) else corpora
        indexes = [read_index(c) for c in corpora]
        return cls.leaving_out(np.concatenate([index.fingerprints(c) for c, index in zip(corpora, indexes)]),
                               np.concatenate([index.identity for index in indexes]), exclude_from, exclude_folds)

    @classmethod
    def leaving_out(cls, fingerprints: np.ndarray, identities: np.ndarray, exclude_from: str = "",
                    exclude_folds: list[int] = ()) -> "TrainingSet":
        """From the training rows' fingerprints and identities, for a caller that has read the indexes already."""
        keep = np.ones(len(fingerprints), dtype=bool)
        if exclude_from:
            contents, ids = evaluation_sets(exclude_from, list(exclude_folds))
            keep = ~(members(fingerprints, contents) | (members(identities, ids) & (identities != 0)))
        return cls(keep, fingerprints, identities)

    @property
    def excluded(self) -> int:
        return int((~self.keep).sum())

    @property
    def fingerprints(self) -> np.ndarray:
        """Sorted unique fingerprints of the kept rows (what an export records)."""
        return np.unique(self.all_fingerprints[self.keep])

    @property
    def identities(self) -> np.ndarray:
        """Sorted unique identities of the kept rows (0 left out), the export's second set."""
        kept = np.unique(self.all_identities[self.keep])
        return kept[kept != 0]


def sorted_set(values: np.ndarray) -> np.ndarray:
    """``values`` sorted and unique (an export's sets are already)."""
    return values if len(values) < 2 or (values[1:] > values[:-1]).all() else np.unique(values)


def overlap_by_fold(corpus: str | os.PathLike, seen: np.ndarray, folds: list[int] | None,
                    seen_identities: np.ndarray = None, examples: int = 3) -> dict[int, tuple[int, list[str]]]:
    """{fold: (records of that fold whose fingerprint is in ``seen`` or whose identity is in
    ``seen_identities``, a few of their ids)} where any; ``folds`` None: every record (fold 0: none)."""
    index = read_index(corpus)
    hit = members(index.fingerprints(corpus), sorted_set(seen))
    if seen_identities is not None:
        hit |= members(index.identity, sorted_set(seen_identities)) & (index.identity != 0)
    if folds is not None:
        hit &= np.isin(index.fold, folds)
    if not hit.any():
        return {}
    ids = read_metadata(corpus, ["record_id"], read_manifest(corpus))["record_id"]
    return {int(fold): (int((hit & (index.fold == fold)).sum()), list(ids[hit & (index.fold == fold)][:examples]))
            for fold in np.unique(index.fold[hit])}
