"""Multi-hot targets from the labels stored in a corpus (any source's own vocabulary).

Pre-training uses the source's codes directly: PTB-XL SCP statements, SNOMED-CT codes of
PhysioNet 2021, CODE-15's abnormalities. Targets are sparse, so ten million records with
a few labels each stay small.
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
