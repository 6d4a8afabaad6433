"""A numeric per-record index of a corpus: what training needs, without millions of strings.

Reading the string columns of 7 million records (ids, patients, labels) from the shards
takes minutes and gigabytes; this index holds the same facts as four ``.npy`` arrays
(about 15 bytes a record), written once by ``python -m preprocess merge`` and read in
well under a second:

    index/group.npy          uint32  CRC-32 of the patient id (else of the recording id)
    index/fold.npy           int8    the source's fold, 0 when none
    index/label_indptr.npy   int64   CSR row pointers over the manifest's label vocabulary
    index/label_indices.npy  int32   CSR column indices (sorted vocabulary order)
    index/identity.npy       uint64  hash of the record's canonical id (ptbxl:<ecg_id>), 0 when none
    index/fingerprint.npy    uint64  content fingerprint of the source record (data/fingerprint.py)
    index/split.npy          int8    folds made by ``python -m preprocess split`` for a corpus without
                                     its own (then read as ``fold``); index/split.json says how

    index/checksums.json     sha256 of each array above, written after them, and the fingerprints' version

The arrays are checked against their checksums whenever the index is read (about 0.1 s at
7 M records): a zeroed fold column or a truncated file stops the job naming the file. A
corpus without an index, or with one from before checksums existed, is indexed in memory,
with a warning. A corpus written before fingerprints existed has none; ``fingerprints()``
then says how to add them (``python -m preprocess fingerprint``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy import sparse

from ecgdist.data.fingerprint import FINGERPRINT_VERSION, identity_hash
from ecgdist.data.labels import label_vocabulary, multi_hot
from ecgdist.data.shards import CorruptShard, Manifest, read_manifest, read_metadata
from ecgdist.files import atomic_write_text, file_sha256

log = logging.getLogger(__name__)
INDEX_DIR = "index"
ARRAYS = ("group", "fold", "label_indptr", "label_indices", "identity")
FINGERPRINT = "fingerprint"
SPLIT, SPLIT_RECORD = "split", "split.json"
OPTIONAL = (FINGERPRINT, SPLIT)

CHECKSUMS = "checksums.json"


class CorruptIndex(CorruptShard):
    """An index array no longer matches its checksum; the message names the file (a corrupt corpus
    file like a shard, and handled as one)."""


class FingerprintsMissing(ValueError):
    """The corpus predates content fingerprints; the message says how to add them."""


@dataclass
class CorpusIndex:
    group: np.ndarray
    fold: np.ndarray
    label_indptr: np.ndarray
    label_indices: np.ndarray
    identity: np.ndarray  # hash of each record's canonical id, 0 where none is known
    vocabulary: list[str]  # the manifest's labels, sorted
    fingerprint: np.ndarray | None = None  # None: a corpus from before fingerprints
    fingerprint_version: int = FINGERPRINT_VERSION  # which definition made them (data/fingerprint.py)

    def fingerprints(self, corpus: str | os.PathLike) -> np.ndarray:
        command = f"python -m preprocess fingerprint {corpus} INPUT (INPUT: the folder it was made from)"
        if self.fingerprint is None:
            raise FingerprintsMissing(f"corpus {corpus} has no content fingerprints (it was written before they "
                                      f"existed); add them in place with: {command}")
        if self.fingerprint_version != FINGERPRINT_VERSION:
            raise FingerprintsMissing(
                f"corpus {corpus} has fingerprints of version {self.fingerprint_version}, not {FINGERPRINT_VERSION} "
                "(PTB-XL records are now fingerprinted from their 500 Hz file whatever the rate, so that they match "
                f"the PhysioNet/CinC copies); fingerprint it again in place with: {command}")
        return self.fingerprint

    def targets(self, labels: list[str]) -> sparse.csr_matrix:
        """(records, len(labels)) multi-hot targets for a subset of the vocabulary."""
        full = sparse.csr_matrix((np.ones(len(self.label_indices), np.float32), self.label_indices,
                                  self.label_indptr), shape=(len(self.group), len(self.vocabulary)))
        column = {label: k for k, label in enumerate(self.vocabulary)}
        return full[:, [column[label] for label in labels]].tocsr()


def group_key(patient_id: str, record_id: str) -> str:
    """A patient's records share a group; without a patient, a recording's windows do."""
    return patient_id if patient_id else record_id.split("#")[0]


def shard_fingerprints(corpus: Path, manifest: Manifest) -> tuple[bool, int]:
    """Whether the shards hold fingerprints, and of which version (1: written before versions)."""
    if not manifest.shards:
        return True, FINGERPRINT_VERSION
    with h5py.File(corpus / manifest.shards[0].file, "r") as f:
        return FINGERPRINT in f, int(f.attrs.get("fingerprint_version", 1))


def compute_index(corpus: Path, manifest: Manifest) -> CorpusIndex:
    vocabulary = label_vocabulary(manifest)
    fingerprinted, version = shard_fingerprints(corpus, manifest)
    columns = ["record_id", "patient_id", "labels", "fold"] + [FINGERPRINT] * fingerprinted
    table = read_metadata(corpus, columns, manifest)
    group = np.fromiter((zlib.crc32(group_key(p, r).encode()) for p, r in zip(table["patient_id"], table["record_id"])),
                        dtype=np.uint32, count=len(table["record_id"]))
    labels = multi_hot(table["labels"], vocabulary)
    identity = np.fromiter(map(identity_hash, table["record_id"]), dtype=np.uint64, count=len(table["record_id"]))
    return CorpusIndex(group, table["fold"].astype(np.int8), labels.indptr.astype(np.int64),
                       labels.indices.astype(np.int32), identity, vocabulary,
                       table[FINGERPRINT].astype(np.uint64) if fingerprinted else None, version)


def save_array(folder: Path, name: str, array: np.ndarray) -> None:
    """One index array, atomically (unique temporary names: two array tasks may merge at once)."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=f"{name}.", suffix=".tmp", delete=False) as f:
        np.save(f, array)
    os.replace(f.name, folder / f"{name}.npy")


def write_checksums(folder: Path, fingerprint_version: int = FINGERPRINT_VERSION) -> None:
    """The sha256 of every index array present, after the arrays themselves were written, and the
    version of the fingerprints among them."""
    names = [name for name in ARRAYS + OPTIONAL if (folder / f"{name}.npy").exists()]
    atomic_write_text(folder / CHECKSUMS, json.dumps({
        "files": {f"{name}.npy": file_sha256(folder / f"{name}.npy") for name in names},
        "fingerprint_version": fingerprint_version}, indent=1))


def read_checksums(folder: Path) -> dict:
    return json.loads((folder / CHECKSUMS).read_text())


def index_problems(corpus: str | os.PathLike) -> list[str]:
    """'FILE: reason' for every index array that does not match its recorded checksum."""
    folder = Path(corpus) / INDEX_DIR
    try:
        recorded = read_checksums(folder)["files"]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError):
        return [f"{folder / CHECKSUMS}: not valid"]
    problems = []
    for name, digest in recorded.items():
        path = folder / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif file_sha256(path) != digest:
            problems.append(f"{path}: does not match its checksum")
    return problems


def write_index(corpus: str | os.PathLike, manifest: Manifest) -> CorpusIndex:
    """Compute and save the index (atomically, array by array); ``merge`` calls it."""
    corpus = Path(corpus)
    index = compute_index(corpus, manifest)
    folder = corpus / INDEX_DIR
    folder.mkdir(exist_ok=True)
    for name in ARRAYS + (FINGERPRINT,) * (index.fingerprint is not None):
        save_array(folder, name, getattr(index, name))
    write_checksums(folder, index.fingerprint_version)
    return index


def read_index(corpus: str | os.PathLike, manifest: Manifest | None = None) -> CorpusIndex:
    corpus = Path(corpus)
    manifest = manifest or read_manifest(corpus)
    folder = corpus / INDEX_DIR
    if (folder / CHECKSUMS).exists() and all((folder / f"{name}.npy").exists() for name in ARRAYS):
        problems = index_problems(corpus)
        if problems:
            raise CorruptIndex(f"index file {problems[0]}; rebuild the index with: python -m preprocess merge {corpus}")
        arrays = {name: np.load(folder / f"{name}.npy") for name in ARRAYS}
        fingerprint = folder / f"{FINGERPRINT}.npy"
        if fingerprint.exists():
            arrays[FINGERPRINT] = np.load(fingerprint)
        if all(len(a) == manifest.records for k, a in arrays.items() if k in ("group", FINGERPRINT)):
            made = read_split(corpus, manifest.records)
            if made is not None:
                arrays["fold"] = made
            return CorpusIndex(**arrays, vocabulary=label_vocabulary(manifest),
                               fingerprint_version=read_checksums(folder).get("fingerprint_version", 1))
    log.warning("%s has no up-to-date, checksummed index/ (python -m preprocess merge writes it): indexing in memory",
                corpus)
    return compute_index(corpus, manifest)


class SplitOutdated(ValueError):
    """The corpus's records changed after its folds were made; the message says what to do."""


def read_split(corpus: Path, records: int) -> np.ndarray | None:
    """The folds ``preprocess split`` made (checked by ``index_problems`` with the other arrays), or None."""
    path = corpus / INDEX_DIR / f"{SPLIT}.npy"
    if not path.exists():
        return None
    folds = np.load(path)
    if len(folds) != records:
        raise SplitOutdated(f"{path} has folds for {len(folds)} records, the corpus now has {records}: its records "
                            "changed after the split was made, so its benchmark splits no longer hold. Rebuild the "
                            "corpus as it was, or make a new corpus and split it")
    return folds


def write_split(corpus: str | os.PathLike, folds: np.ndarray, record: dict) -> None:
    """Save made folds beside the index, add them to its checksums, then the record of how they were made."""
    folder = Path(corpus) / INDEX_DIR
    save_array(folder, SPLIT, folds.astype(np.int8))
    write_checksums(folder, read_checksums(folder).get("fingerprint_version", FINGERPRINT_VERSION))
    atomic_write_text(folder / SPLIT_RECORD, json.dumps({**record, "sha256": file_sha256(folder / f"{SPLIT}.npy")},
                                                        indent=1))


def split_record(corpus: str | os.PathLike) -> dict | None:
    path = Path(corpus) / INDEX_DIR / SPLIT_RECORD
    return json.loads(path.read_text()) if path.exists() else None


def joined_groups(indexes: list[CorpusIndex]) -> np.ndarray:
    """Patient groups of several corpora end to end (uint64), kept apart per corpus: patient "17"
    of one hospital is not patient "17" of another. One corpus keeps its own group values."""
    return np.concatenate([index.group.astype(np.uint64) | (np.uint64(c) << np.uint64(32))
                           for c, index in enumerate(indexes)])


def joined_targets(indexes: list[CorpusIndex], labels: list[str]) -> sparse.csr_matrix:
    """(records of all corpora, len(labels)) multi-hot targets over a union vocabulary; a corpus
    fills only the columns of labels it has."""
    blocks = []
    for index in indexes:
        vocabulary = set(index.vocabulary)
        own = np.array([k for k, label in enumerate(labels) if label in vocabulary], dtype=np.int64)
        part = index.targets([labels[k] for k in own]).tocoo()
        blocks.append(sparse.csr_matrix((part.data, (part.row, own[part.col])), shape=(len(index.group), len(labels))))
    return sparse.vstack(blocks, format="csr")
