"""``python -m preprocess split CORPUS --seed S``: benchmark folds for a corpus without its own.

Run once, after ``merge`` and before anything trains on the corpus (ecgdist/tasks/folds.py
says how the folds are made). They are written beside the index, checksummed with it, so
every reader of the corpus's folds sees the same ones. A rerun with the same seed
changes nothing; one with another seed is refused: moving a record between
splits would silently invalidate every pre-training run that left the old test split out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgdist.config import SPLIT_FOLDS
from ecgdist.data.index import CHECKSUMS, INDEX_DIR, SPLIT_RECORD, read_index, split_record, write_split
from ecgdist.data.shards import read_manifest, read_metadata
from ecgdist.tasks.folds import FOLDS, grouped_folds
from ecgdist.tasks.physionet2021 import source_of

METHOD = ("iterative stratification over the corpus's labels, grouped by patient (by recording without patient ids); "
          "PhysioNet 2021: each source database on its own")


class SplitRefused(ValueError):
    """The corpus has folds of its own, or already has other made ones; the message says which."""


def split_corpus(corpus: Path, seed: int) -> tuple[dict, bool]:
    """(the record of the corpus's made folds, whether this call made them)."""
    manifest = read_manifest(corpus)
    folder = corpus / INDEX_DIR
    if not (folder / CHECKSUMS).exists():
        raise SplitRefused(f"{corpus} has no checksummed index: run python -m preprocess merge {corpus} first")
    existing = split_record(corpus)
    if existing is not None:
        if existing["seed"] != seed:
            raise SplitRefused(f"{corpus} was already split with --seed {existing['seed']} "
                               f"({folder / SPLIT_RECORD}); another split would move records between train, validation "
                               "and test, and pre-training runs that left its test split out would no longer be clean")
        read_index(corpus, manifest)  # the stored folds still match their checksum and the corpus
        return existing, False
    own = np.load(folder / "fold.npy")
    if own.any():
        raise SplitRefused(f"{corpus} has the source's own folds ({', '.join(map(str, np.unique(own[own > 0])))}); "
                           "benchmarks on it use those")
    index = read_index(corpus, manifest)
    by_source = manifest.recipe.source == "physionet2021"
    table = read_metadata(corpus, ["patient_id"] + ["record_id"] * by_source, manifest)
    targets = index.targets(index.vocabulary)
    # PhysioNet 2021 has one benchmark per source database: each source is split on its own, so each fills every fold
    parts = np.array([source_of(r) for r in table["record_id"]]) if by_source else np.zeros(len(index.group), dtype=int)
    made = np.zeros(len(index.group), dtype=np.int8)
    for part in np.unique(parts):
        chosen = parts == part
        made[chosen] = grouped_folds(index.group[chosen], targets[chosen], seed)
    patients = table["patient_id"]
    record = {"seed": seed, "folds": FOLDS, "method": METHOD, "records": int(len(made)),
              "groups": int(len(np.unique(index.group))), "records_with_patient_id": int((patients != "").sum()),
              "records_per_fold": {str(f): int((made == f).sum()) for f in range(1, FOLDS + 1)},
              "records_per_split": {name: int(np.isin(made, chosen).sum()) for name, chosen in SPLIT_FOLDS.items()}}
    write_split(corpus, made, record)
    return split_record(corpus), True


def format_split(corpus: Path, record: dict, made: bool) -> str:
    splits = record["records_per_split"]
    return (f"{corpus}: {'made' if made else 'unchanged (already split)'}: {record['folds']} folds, seed {record['seed']}, "
            f"{record['records']} records of {record['groups']} patients/recordings "
            f"({record['records_with_patient_id']} with a patient id); train (folds 1-8) {splits['train']}, "
            f"validation (9) {splits['val']}, test (10) {splits['test']}; sha256 {record['sha256'][:12]}...")
