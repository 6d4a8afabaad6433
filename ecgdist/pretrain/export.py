"""A pre-training run's export (``python -m ecgdist.export RUN_DIR OUT [--best | --step N]``): consolidated fp32 weights from any ZeRO stage.

Reads the newest usable checkpoint of a pre-training run (the same choice a resuming
job makes), or the one with the best probe value (``--best``: the run's
``checkpoint.keep_best`` metric), or the one of a step, gathers the ZeRO partitions
offline with DeepSpeed's own converter, and writes the weights plus the resolved config,
the label vocabulary, the corpus recipe and the provenance of its training data: the
corpora (manifest checksums), what was left out, and the content fingerprints of every
record it could train on, so a fine-tune can refuse weights that saw its evaluation records.
``OUT.safetensors`` is safetensors (tensors and JSON metadata: any tool reads it, nothing
unpickles); any other name the released-checkpoint layout (``{"state_dict": ...}``, torch.save).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ecgdist.config import PretrainConfig, from_dict, read_yaml_mapping
from ecgdist.data.fingerprint import FINGERPRINT_VERSION
from ecgdist.data.index import FingerprintsMissing
from ecgdist.data.leakage import TrainingSet, fingerprint_set_sha256, manifest_sha256
from ecgdist.data.shards import read_manifest
from ecgdist.models import build_model
from ecgdist.models.pretrained import load_pretrained, read_weights, write_weights
from ecgdist.pretrain.checkpoint import Checkpointer, step_tag
from ecgdist.pretrain.deepspeed_adapter import fp32_weights, model_states, partitioned, state_types
from ecgdist.safe_load import UnreadableFile, check_names_only, load

log = logging.getLogger(__name__)


def consolidated_state_dict(checkpoints: Path, tag: str, client: dict) -> dict[str, torch.Tensor]:
    """fp32 weights: gathered from the ZeRO partitions, or, under ZeRO stage 0 (nothing
    partitioned), the module's own state dict that DeepSpeed saved whole."""
    if partitioned(checkpoints / tag):
        for file in sorted((checkpoints / tag).glob("*.pt")):  # the converter unpickles them in full
            check_names_only(file, state_types())
        state = fp32_weights(checkpoints, tag)
    else:
        state = client["module"]
    return {k: v.float().contiguous() if v.is_floating_point() else v for k, v in state.items()}


def choose_checkpoint(run_dir: str | Path, best: bool = False, step: int | None = None) -> tuple[str, str]:
    """(tag, why): the newest usable checkpoint, the best by the run's ``checkpoint.keep_best``, or ``step``'s."""
    checkpoints = Path(run_dir) / "checkpoints"
    checkpointer = Checkpointer(checkpoints)
    if step is not None:
        tag = step_tag(step)
        if tag not in checkpointer.complete_tags():
            kept = ", ".join(t.removeprefix("step-").lstrip("0") for t in checkpointer.complete_tags()) or "none"
            raise FileNotFoundError(f"no complete checkpoint of step {step} under {checkpoints} (steps kept: {kept})")
        reason = checkpointer.problem(tag)
        if reason:
            raise ValueError(f"checkpoint {tag} is corrupt ({reason})")
        return tag, f"step {step}"
    if best:
        metric = read_yaml_mapping(Path(run_dir) / "config.yaml").get("checkpoint", {}).get("keep_best", "")
        if not metric:
            raise ValueError(f"{run_dir} did not keep a best checkpoint: its config has no checkpoint.keep_best")
        found = checkpointer.best(metric)
        if found is None:
            raise FileNotFoundError(f"no checkpoint under {checkpoints} has a value of {metric} (no probe ran yet?)")
        return found[0], f"best {metric} {found[1]:.4f}"
    tag = checkpointer.newest_usable()
    if tag is None:
        raise FileNotFoundError(f"no complete, uncorrupted checkpoint under {checkpoints}")
    return tag, "newest"


def checkpoint_weights(checkpoints: Path, tag: str) -> tuple[dict[str, torch.Tensor], dict]:
    """A verified checkpoint's consolidated fp32 weights and its client state (config, labels, ...)."""
    try:
        client = load(model_states(checkpoints / tag), known=state_types())
    except UnreadableFile as error:
        raise ValueError(str(error)) from None
    return consolidated_state_dict(checkpoints, tag, client), client


def export(run_dir: str | Path, out: str | Path, best: bool = False, step: int | None = None) -> str:
    """Write the chosen checkpoint's export to ``out``; the line the command prints."""
    checkpoints = Path(run_dir) / "checkpoints"
    tag, why = choose_checkpoint(run_dir, best, step)
    state, client = checkpoint_weights(checkpoints, tag)
    extra = {"config": client["config"], "labels": client["labels"], "recipe": client["recipe"],
             "step": client["step"], "provenance": training_provenance(client.get("provenance"))}
    if extra["provenance"]["corpora"]:  # weights trained on a SIMULATED corpus say so, as every output of it
        extra["simulated"] = any(read_manifest(c["path"]).extra.get("simulated") for c in extra["provenance"]["corpora"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_weights(out, state, extra)
    fingerprints = extra["provenance"]["fingerprints"]
    return (f"exported {tag} ({why}; {len(state)} tensors, step {client['step']}, "
            f"{0 if fingerprints is None else len(fingerprints)} training-record fingerprints) to {out}")


def training_provenance(recorded: dict | None) -> dict:
    """What the model was trained on: the run's corpora (with their manifest checksums), what was
    left out, and the sorted content fingerprints of every record it could train on."""
    if recorded is None:
        return {"corpora": [], "excluded": 0, "exclude_from": None, "fingerprints": None,
                "note": "the run predates provenance records: its training data is unknown"}
    excluded = recorded["exclude_from"]
    for corpus in recorded["corpora"] + ([excluded] if excluded else []):
        if manifest_sha256(corpus["path"]) != corpus["manifest_sha256"]:
            raise ValueError(f"corpus {corpus['path']} changed since this run trained on it (manifest checksum): "
                             "its provenance cannot be stated")
    try:
        training = TrainingSet.build([c["path"] for c in recorded["corpora"]], excluded["path"] if excluded else "",
                                     excluded["folds"] if excluded else [])
    except FingerprintsMissing as error:
        log.warning("%s: the export cannot list the training records", error)
        return {**recorded, "fingerprints": None, "note": str(error)}
    fingerprints = torch.from_numpy(training.fingerprints.view(np.int64))
    identities = torch.from_numpy(training.identities.view(np.int64))
    return {**recorded, "fingerprints": fingerprints, "fingerprints_sha256": fingerprint_set_sha256(fingerprints),
            "identities": identities, "identities_sha256": fingerprint_set_sha256(identities),
            "fingerprint_version": FINGERPRINT_VERSION}


def exported_model(weights: str | Path) -> tuple[torch.nn.Module, PretrainConfig, dict]:
    """The model an export holds, built from its config and loaded strictly; that config; the
    export's other entries (labels, recipe, provenance)."""
    state, extra = read_weights(weights)
    cfg = from_dict(PretrainConfig, extra["config"])
    model = build_model(cfg.model, len(cfg.data.leads), cfg.data.crop_samples, len(extra["labels"]))
    load_pretrained(model, weights, state=state)
    return model, cfg, extra

