"""Folds for a corpus that has none: seeded, grouped by patient, stratified over its labels.

PTB-XL ships ten folds (1-8 train, 9 validation, 10 test); PhysioNet 2021, CODE-15 % and a
hospital's WFDB export do not. ``python -m preprocess split`` makes ten folds in the same
convention once, before anything trains on the corpus, so that every reader of folds (the
leakage refusal of ``data.exclude_from``, fine-tune sweeps, pre-training probes) sees the
same ones. A patient's records all land in one fold (the index's groups: the patient id
where the source has one, else the recording). Patients are dealt to folds by iterative
stratification (Sechidis et al., the ``iterative-stratification`` package) over each
patient's labels, so rare classes are spread over the folds rather than left to chance;
labels of fewer than ten patients, which cannot reach every fold, are not stratified on
(a long-tailed vocabulary would otherwise cost memory for nothing).
"""

from __future__ import annotations

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from scipy import sparse

FOLDS = 10


class TooFewGroups(ValueError):
    """Fewer patients (or recordings) than folds: some fold would be empty."""


def grouped_folds(group: np.ndarray, targets: sparse.spmatrix, seed: int, folds: int = FOLDS) -> np.ndarray:
    """int8 fold (1..folds) of every record; records of one group share a fold."""
    groups, inverse = np.unique(group, return_inverse=True)
    if len(groups) < folds:
        raise TooFewGroups(f"{len(groups)} patients (or recordings where there is no patient id) cannot fill "
                           f"{folds} folds")
    member = sparse.csr_matrix((np.ones(len(group)), (inverse, np.arange(len(group)))), shape=(len(groups), len(group)))
    held = (member @ sparse.csr_matrix(targets)) > 0  # a patient has the labels of any of their records
    spreadable = np.flatnonzero(np.asarray(held.sum(axis=0)).ravel() >= folds)  # rarer: not in every fold anyway
    if not len(spreadable):  # nothing to stratify on: a seeded deal of equal-sized folds
        return (np.random.default_rng(seed).permutation(len(groups)) % folds + 1).astype(np.int8)[inverse]
    labels = np.hstack([held[:, spreadable].toarray(), np.ones((len(groups), 1), bool)])  # ones: balanced fold sizes
    fold_of_group = np.zeros(len(groups), dtype=np.int8)
    splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, chosen) in enumerate(splitter.split(np.zeros(len(groups)), labels.astype(int)), start=1):
        fold_of_group[chosen] = fold
    return fold_of_group[inverse]
