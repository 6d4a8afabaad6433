"""The weights a fine-tune starts from, and the classifier built on them.

Read once, without running pickled code; checked before anything trains or is submitted:
they fit the model, they were trained on inputs made as the corpus's (an ecgdist export
says how; the released ECGFounder weights have their published recipe), and their training
data is checked against the corpus's evaluation folds (finetune/provenance.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ecgdist.config import ConfigError, FinetuneConfig, ModelSection
from ecgdist.data.dataset import ShardCorpus
from ecgdist.data.shards import INPUT_FIELDS
from ecgdist.finetune.provenance import no_weights, pretraining_data, training_records_seen
from ecgdist.models import CLASSIFIERS, build_model
from ecgdist.models.ecgfounder_release import HUB_REPO, RELEASED_RECIPE
from ecgdist.models.pretrained import (
    CheckpointMismatchError,
    UnreadableWeights,
    WeightsChanged,
    load_pretrained,
    read_weights,
)


def build_finetune_model(cfg: FinetuneConfig, strategy: str, num_classes: int,
                         pretrained: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """A classifier with a freshly initialised head (``finetune.keep_head`` keeps a pre-trained one of the
    same shape); stochastic depth only for the post-training strategy. ``pretrained``: the tensors of
    ``finetune.weights`` when already read."""
    if cfg.model.name not in CLASSIFIERS:
        raise ConfigError(f"config key 'model.name' is {cfg.model.name!r}; fine-tuning needs one of {CLASSIFIERS}")
    section = dataclasses.replace(cfg.model, num_classes=num_classes, drop_path=cfg.finetune.drop_path
                                  if strategy == "post_training" else cfg.finetune.baseline_drop_path)
    model = build_model(section, len(cfg.data.leads), cfg.data.crop_samples, num_classes)
    if strategy != "scratch" and cfg.finetune.weights:
        load_pretrained(model, cfg.finetune.weights, not cfg.finetune.keep_head, cfg.finetune.trusted_types,
                        pretrained)
    return model


def released_ecgfounder(cfg: FinetuneConfig, extra: dict) -> bool:
    """Weights in the released ECGFounder layout: its Hub repository, or the released Net1D's shape
    in a file without ecgdist's record of how it was made."""
    released_shape = cfg.model.name == "net1d" and (cfg.model.widths, cfg.model.blocks) == \
        (ModelSection().widths, ModelSection().blocks)
    return str(cfg.finetune.weights).startswith(HUB_REPO) or \
        (released_shape and "recipe" not in extra and "provenance" not in extra)


def recipe_mismatch(cfg: FinetuneConfig, corpus: ShardCorpus, extra: dict) -> str:
    """How the inputs this corpus gives differ from those the weights were trained on ("" when they agree)."""
    ours = {**corpus.manifest.recipe.to_dict(), "normalize": cfg.data.normalize}
    trained = dict(extra.get("recipe") or {})
    if not trained and released_ecgfounder(cfg, extra):
        trained = RELEASED_RECIPE
    known = "the released ECGFounder recipe" if trained is RELEASED_RECIPE else "weights"
    differ = [f"{k} {trained[k]} ({known}) vs {ours[k]} ({'data.normalize' if k == 'normalize' else 'corpus'})"
              for k in (*INPUT_FIELDS, "normalize") if k in trained and trained[k] != ours[k]]
    trained_leads = (extra.get("config") or {}).get("data", {}).get("leads")
    if trained_leads and list(trained_leads) != list(cfg.data.leads):
        differ.append(f"leads {','.join(trained_leads)} (weights) vs {','.join(cfg.data.leads)} (data.leads)")
    return "; ".join(differ)


def check_weights(cfg: FinetuneConfig, corpus: ShardCorpus,
                  expected_sha256: str = "") -> tuple[dict[str, torch.Tensor], dict]:
    """Before anything trains or is submitted: the weights file loads without running pickled code,
    fits the model, and was trained on inputs made as this corpus's (an ecgdist export says how; the
    released ECGFounder weights have their published recipe). Returns what it read
    (``read_weights``), so a job reads the file once; ``expected_sha256``: the checksum its sweep recorded."""
    weights = cfg.finetune.weights
    try:
        state, extra = read_weights(weights, cfg.finetune.trusted_types, expected_sha256)
    except FileNotFoundError:
        raise ConfigError(f"config key 'finetune.weights': {weights} does not exist") from None
    except WeightsChanged:
        raise ConfigError(f"config key 'finetune.weights': {weights} changed since the sweep was submitted "
                          "(sha256): this job would train another model than its row's other jobs") from None
    except UnreadableWeights as error:
        raise ConfigError(f"config key 'finetune.weights': {error}") from None
    differ = recipe_mismatch(cfg, corpus, extra)
    if differ and not cfg.finetune.allow_recipe_mismatch:
        raise ConfigError(f"config key 'finetune.weights': {weights} was trained on other inputs than corpus "
                          f"{corpus.path} gives: {differ}. Make the corpus with that recipe (python -m preprocess "
                          "... --filter/--rate), or finetune.allow_recipe_mismatch=true to run anyway (rows marked)")
    try:
        build_finetune_model(cfg, "baseline", num_classes=1, pretrained=state)
    except CheckpointMismatchError as error:
        raise ConfigError(f"config key 'finetune.weights': {error}") from None
    return state, extra


def starting_weights(cfg: FinetuneConfig, strategy: str, corpus: ShardCorpus, expected_sha256: str = "",
                     training_rows: np.ndarray | None = None) -> tuple[dict | None, dict, dict | None]:
    """(the pre-trained tensors the job starts from, or None; what is known of their training data;
    the file's record of it, ``{}`` when it has none, None without weights), from one read of the file;
    ``expected_sha256``: the file's checksum when its sweep was submitted; ``training_rows``: the
    task's training records, counted against what pre-training saw."""
    if not cfg.finetune.weights or strategy == "scratch":
        return None, no_weights(), None
    state, extra = check_weights(cfg, corpus, expected_sha256)
    known = pretraining_data(cfg.finetune.weights, extra, str(corpus.path), cfg.finetune.allow_overlap)
    if training_rows is not None:
        known["training_records_seen"] = training_records_seen(extra, str(corpus.path), training_rows)
    differ = recipe_mismatch(cfg, corpus, extra)  # only with finetune.allow_recipe_mismatch: the row is marked
    return state, {**known, "recipe_mismatch": differ} if differ else known, extra.get("provenance") or {}
