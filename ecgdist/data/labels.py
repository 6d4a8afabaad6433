"""Multi-hot targets from the labels stored in a corpus (any source's own vocabulary).

Pre-training uses the source's codes directly: PTB-XL SCP statements, SNOMED-CT codes of
PhysioNet 2021, CODE-15's abnormalities. Targets are sparse, so ten million records with
a few labels each stay small. Over several corpora the target space is the union of their
vocabularies (a code spelled the same in two corpora, such as a SNOMED-CT code in
PhysioNet 2021 and in a hospital's table, is one label), and a corpus annotates exactly the
codes its manifest counts: its records are scored only on those (``annotated``).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
from scipy import sparse

from ecgdist.data.shards import Manifest, split_labels


def label_vocabulary(manifest: Manifest, min_count: int = 1) -> list[str]:
    return sorted(code for code, count in manifest.labels.items() if count >= min_count)


def multi_hot(label_texts: Sequence[str], vocabulary: list[str],
              mapping: Callable[[str], Iterable[str]] = lambda code: (code,)) -> sparse.csr_matrix:
    """(n, K) targets; ``mapping`` turns one stored code into the vocabulary's labels."""
    column = {label: k for k, label in enumerate(vocabulary)}
    rows, cols = [], []
    for i, text in enumerate(label_texts):
        hits = {column[label] for code in split_labels(text) for label in mapping(code) if label in column}
        rows.extend([i] * len(hits))
        cols.extend(sorted(hits))
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                             shape=(len(label_texts), len(vocabulary)))


def union_vocabulary(manifests: Sequence[Manifest], min_count: int = 1) -> list[str]:
    """Labels with at least ``min_count`` positives over all the corpora together, sorted."""
    totals: dict[str, int] = {}
    for manifest in manifests:
        for code, count in manifest.labels.items():
            totals[code] = totals.get(code, 0) + count
    return sorted(code for code, count in totals.items() if count >= min_count)


def annotated(manifests: Sequence[Manifest], labels: list[str]) -> np.ndarray:
    """(corpora, len(labels)) float32: 1 where the corpus annotates the label."""
    return np.array([[label in m.labels for label in labels] for m in manifests], dtype=np.float32)
