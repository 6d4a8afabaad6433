"""Fine-tuning refuses weights whose training data holds its validation or test records.

An ecgdist export carries the content fingerprints of every record its run could train
on (pretrain/export.py); they are compared with the fingerprints of the fine-tune
corpus's folds 9 and 10. A match stops the job before training, naming the count per fold
and a few record ids, unless ``finetune.allow_overlap``; the job's result then says so and
its rows are marked in the table. Weights without such a record (the released ECGFounder
files) are "unknown", stated in the result and the table, not refused.

A fine-tuned model carries its backbone's records and the ones it was fine-tuned on
(``finetuned_provenance``), so fine-tuning it again, on PTB-XL after PhysioNet/CinC 2021
(which holds PTB-XL's records) say, is checked the same way. When its backbone's records
are unknown, the list is ``complete: false``: a match still refuses, no match proves nothing.
"""

from __future__ import annotations

import numpy as np
import torch

from ecgdist.config import ConfigError
from ecgdist.data.fingerprint import FINGERPRINT_VERSION
from ecgdist.data.index import FingerprintsMissing, read_index
from ecgdist.data.leakage import fingerprint_set_sha256, manifest_sha256, members, overlap_by_fold
from ecgdist.files import file_sha256
from ecgdist.models.hub import locate_weights

EVALUATION_FOLDS = [9, 10]  # PTB-XL: validation (model selection) and test
UNKNOWN, CHECKED, OVERLAP = "unknown", "no overlap", "OVERLAP"


def no_weights() -> dict:
    """What a job that starts from no pre-trained weights (scratch, or none named) says of pre-training data."""
    return {"status": "none", "detail": "no pre-trained weights"}


def fingerprint_set_problem(provenance: dict) -> str | None:
    """Why an export's sets of training records (content fingerprints, identities) cannot be relied on
    (edited, emptied, another dtype), or None."""
    for key in ("fingerprints", "identities"):
        values = provenance.get(key)
        if not isinstance(values, torch.Tensor) or values.dtype != torch.int64 or values.dim() != 1:
            return f"({key}) is not the int64 vector exports write"
        if f"{key}_sha256" not in provenance:
            return f"({key}) carries no checksum (an export from before checksums)"
        if fingerprint_set_sha256(values) != provenance[f"{key}_sha256"]:
            return f"({key}) does not match its checksum (edited after the export)"
    if not len(provenance["fingerprints"]):
        return "is empty"
    return None


def usable_record(provenance: dict) -> bool:
    """Whether a weights file's provenance lists training records that can be compared with a corpus's:
    present, as exported (``fingerprint_set_problem``), of this fingerprint version."""
    return provenance.get("fingerprints") is not None and not fingerprint_set_problem(provenance) \
        and provenance.get("fingerprint_version", 1) == FINGERPRINT_VERSION


def pretraining_data(weights: str, extra: dict, corpus: str, allow_overlap: bool, external: bool = False) -> dict:
    """{"status": no overlap | unknown | OVERLAP, "detail": a sentence}; raises on an overlap not allowed.
    ``extra``: the non-tensor entries ``read_weights`` found in the file ``weights`` names; ``external``:
    ``corpus`` is an external test set, every record of which is compared (else its folds 9 and 10)."""
    where = f"the external test set {corpus}" if external else "folds 9 and 10"
    provenance = extra.get("provenance")
    if provenance is None:
        return {"status": UNKNOWN, "detail": f"{weights} carries no record of its training data (as the released "
                                             f"ECGFounder weights): overlap with {where} cannot be checked"}
    if provenance.get("fingerprints") is None:
        return {"status": UNKNOWN, "detail": provenance.get("note", "the export lists no training records")}
    version = provenance.get("fingerprint_version", 1)
    if version != FINGERPRINT_VERSION:
        raise ConfigError(f"config key 'finetune.weights': {weights} lists its training records by fingerprints of "
                          f"version {version}, not {FINGERPRINT_VERSION}, which cannot be compared: fingerprint its "
                          "pre-training corpora again (python -m preprocess fingerprint CORPUS INPUT) and export it "
                          "again (python -m ecgdist.export RUN OUT)")
    problem = fingerprint_set_problem(provenance)
    if problem:
        return {"status": UNKNOWN, "detail": f"{weights}: the export's set of training records {problem}, so "
                                             f"overlap with {where} cannot be checked"}
    seen = provenance["fingerprints"].numpy().view(np.uint64)
    try:
        overlap = overlap_by_fold(corpus, seen, None if external else EVALUATION_FOLDS,
                                  provenance["identities"].numpy().view(np.uint64))
    except ValueError as error:  # the fine-tune corpus has no fingerprints
        raise ConfigError(f"config key 'data.corpus': {error}") from None
    finetuned = provenance.get("finetuned", False)
    matches = f"a record of {corpus}" if external else "folds 9 or 10"
    if not overlap:
        if not provenance.get("complete", True):
            return {"status": UNKNOWN, "detail": f"none of the {len(seen)} training records {weights} lists matches "
                                                 f"{matches}, but {provenance['note']}"}
        return {"status": CHECKED, "detail": f"none of the {len(seen)} {'training' if finetuned else 'pre-training'} "
                                             f"records matches {matches}"}
    detail = "; ".join(f"fold {fold}: {count} records (e.g. {', '.join(ids)})" for fold, (count, ids) in overlap.items())
    if not allow_overlap:
        fix = "Fine-tune from weights that did not train on them" if finetuned else \
            f"Pre-train with data.exclude_from={corpus}" + " and data.exclude_folds=[0] (its records without a fold)" * external
        raise ConfigError(f"config key 'finetune.weights': {weights} was {'' if finetuned else 'pre-'}trained on "
                          f"records of {where if external else f'the evaluation folds of {corpus}'}: {detail}. {fix}, "
                          "or set finetune.allow_overlap=true to run anyway (its rows are then marked)")
    return {"status": OVERLAP, "detail": f"allowed by finetune.allow_overlap: {detail}"}


def finetuned_provenance(backbone: dict | None, corpus: str, trained_rows: np.ndarray) -> dict:
    """What a fine-tuned model could have trained on, as its export lists it: the records of its
    backbone (``backbone``: the weights' provenance, ``{}`` when they carry none, None when the job
    started from scratch) and the rows of ``corpus`` it was fine-tuned on (not the rows that only
    selected or tested it), by content and identity."""
    index = read_index(corpus)
    try:
        fingerprints = np.unique(index.fingerprints(corpus)[trained_rows])
    except FingerprintsMissing as error:
        return {"fingerprints": None, "note": str(error)}
    identities = np.unique(index.identity[trained_rows])
    identities = identities[identities != 0]
    corpora = [{"path": corpus, "manifest_sha256": manifest_sha256(corpus), "records": len(trained_rows)}]
    usable = backbone is not None and usable_record(backbone)
    if usable:
        fingerprints = np.union1d(fingerprints, backbone["fingerprints"].numpy().view(np.uint64))
        identities = np.union1d(identities, backbone["identities"].numpy().view(np.uint64))
        corpora = backbone.get("corpora", []) + corpora
    complete = backbone is None or (usable and backbone.get("complete", True))
    listed = {"fingerprints": torch.from_numpy(fingerprints.view(np.int64)),
              "identities": torch.from_numpy(identities.view(np.int64))}
    return {"finetuned": True, "corpora": corpora, **listed,
            **{f"{key}_sha256": fingerprint_set_sha256(values) for key, values in listed.items()},
            "fingerprint_version": FINGERPRINT_VERSION, "complete": complete,
            "note": "" if complete else (backbone.get("note") if usable else "") or
            "the weights it was fine-tuned from carry no usable record of their training data"}


def training_records_seen(extra: dict, corpus: str, rows: np.ndarray) -> int | None:
    """How many of ``rows`` (a task's training records) the weights' pre-training could train on, by
    content or identity; None when the weights do not say what they were trained on. A supervised
    backbone that saw them has seen their labels, which voids a label-fraction claim."""
    provenance = extra.get("provenance") or {}
    if not usable_record(provenance):
        return None
    index = read_index(corpus)
    seen = members(index.fingerprints(corpus)[rows], provenance["fingerprints"].numpy().view(np.uint64))
    identities = index.identity[rows]
    seen |= members(identities, provenance["identities"].numpy().view(np.uint64)) & (identities != 0)
    count = int(seen.sum())
    return count if count or provenance.get("complete", True) else None  # an incomplete list proves no absence


def weights_sha256(weights: str) -> str:
    """The checksum of the file a weights path or Hub reference names (fetched into the cache if needed)."""
    return file_sha256(locate_weights(weights))
