"""Label-fraction subsets of a task's training records: stratified, seeded, nested.

A "10 % of the labels" row means little if its 10 % happens to hold no atrial flutter.
The training records are cut into 100 chunks by iterative stratification over the task's
classes (Sechidis et al., the ``iterative-stratification`` package), so every chunk holds
its share of every class, and put in one seeded order, chunk by chunk. A fraction keeps
the first ``fraction x n`` records of that order: any fraction's subset is the same
whichever other fractions a sweep runs, and a smaller one is always inside a larger one.
A class with at least 1/fraction positives also keeps its first positive in the order,
should the prefix hold none (so the subset may be a few records larger than its share).
"""

from __future__ import annotations

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from scipy import sparse

CHUNKS = 100  # the stratification's resolution: fractions are exact to 1 %


def stratified_order(targets: np.ndarray, seed: int) -> np.ndarray:
    """Every position once: chunk by chunk, each chunk a stratified 1/100 of the records."""
    n = len(targets)
    chunks = min(CHUNKS, n)
    if chunks < 2:
        return np.arange(n)
    folds = MultilabelStratifiedKFold(n_splits=chunks, shuffle=True, random_state=seed)
    return np.concatenate([np.random.default_rng([seed, k]).permutation(chunk)
                           for k, (_, chunk) in enumerate(folds.split(np.zeros(n), targets))])


def nested_subsets(targets: sparse.spmatrix | np.ndarray, fractions: list[float], seed: int) -> dict[float, np.ndarray]:
    """{fraction: sorted positions of the training records it keeps} for every fraction below 1."""
    dense = (targets.toarray() if sparse.issparse(targets) else np.asarray(targets)) > 0
    order = stratified_order(dense.astype(int), seed)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    first_positive = [int(order[np.argmax(dense[order, k])]) for k in range(dense.shape[1])]
    counts = dense.sum(axis=0)
    subsets = {}
    for fraction in sorted(f for f in set(fractions) if f < 1.0):
        keep = rank < max(1, int(round(fraction * len(order))))
        keep[[first_positive[k] for k in np.flatnonzero(counts >= 1 / fraction)]] = True
        subsets[fraction] = np.flatnonzero(keep)
    return subsets
