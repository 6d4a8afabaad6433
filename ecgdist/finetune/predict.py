"""``python -m ecgdist.predict MODEL RECORD...``: per-label probabilities from a fine-tuned model.

MODEL is a fine-tune job's ``model.pth`` (it carries its classes, config and the corpus
recipe), or the released ECGFounder file (its 150 outputs by name, its recipe as known:
models/ecgfounder_release.py). Each RECORD is a WFDB record path (with or without .hea) or a shard corpus
folder. A WFDB record is read and windowed with the recipe the model was trained on
(rate, window length, filter); probabilities are averaged over its windows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ecgdist.config import FinetuneConfig, from_dict, to_dict
from ecgdist.data.dataset import ShardDataset
from ecgdist.data.records import RecordError
from ecgdist.data.shards import MANIFEST_NAME, Recipe, read_manifest, read_metadata
from ecgdist.data.transforms import Transform
from ecgdist.data.wfdb_io import read_wfdb
from ecgdist.data.windows import make_windows
from ecgdist.models import build_model
from ecgdist.models.ecgfounder_release import RELEASED_RECIPE, is_released_file, label_names
from ecgdist.models.pretrained import CheckpointMismatchError, read_weights
from ecgdist.safe_load import PLAIN_DATA_TYPES

SIMULATED_NOTE = "SIMULATED: this model was trained on the built-in synthetic corpus, not on real ECGs"


class Classifier:
    def __init__(self, path: str | Path, trusted_types: list[str] = ()) -> None:
        state, extra = read_weights(path, trusted_types)
        if is_released_file(state, extra):  # its 150 outputs by name, its recipe from what is known of it
            extra = {"classes": list(label_names()), "config": to_dict(FinetuneConfig()),
                     "recipe": Recipe("released ECGFounder", **{k: v for k, v in RELEASED_RECIPE.items()
                                                                if k != "normalize"}).to_dict()}
        if "classes" not in extra:
            kind = "a pre-training export (python -m ecgdist.export)" if "provenance" in extra else "not a fine-tuned model"
            raise ValueError(f"{path} is {kind}: it has no task classes. Fine-tune it first (python -m ecgdist.submit "
                             "finetune ... finetune.weights=IT) and give a job's model.pth")
        self.extra = extra  # the file's entries besides the tensors (the released file's as known)
        self.classes: list[str] = extra["classes"]
        self.cfg = from_dict(FinetuneConfig, extra["config"])
        self.recipe = Recipe.from_dict(extra["recipe"])
        self.simulated = bool(extra.get("simulated"))
        d = self.cfg.data
        self.transform = Transform(d.crop_samples, False, d.normalize, tuple(d.leads))
        section = dataclasses.replace(self.cfg.model, num_classes=len(self.classes), drop_path=0.0)
        self.model = build_model(section, len(d.leads), d.crop_samples, len(self.classes)).eval()
        self.model.load_state_dict(state)

    def probabilities(self, signals: np.ndarray) -> np.ndarray:
        """(W, 12, L) windows in mV -> (W, K) probabilities."""
        x = self.transform(signals.astype(np.float32), np.random.default_rng(0))
        with torch.no_grad():
            return torch.sigmoid(self.model(torch.from_numpy(x))).numpy()

    def record(self, path: str | Path) -> tuple[np.ndarray, str]:
        """Probabilities averaged over the record's windows, and a note when it was padded."""
        raw = read_wfdb(str(path).removesuffix(".hea"))
        windows = np.stack([w for w, _ in make_windows(raw, self.recipe)])
        seconds = len(raw.signal) / raw.fs
        note = (f"{path}: {seconds:.2f} s is shorter than the model's {self.recipe.seconds:g} s window: zero-padded "
                f"by {self.recipe.seconds - seconds:.2f} s ({1 - seconds / self.recipe.seconds:.0%} of the input)"
                if seconds < self.recipe.seconds else "")
        return self.probabilities(windows).mean(axis=0), note

    def corpus(self, path: str | Path, batch: int = 64):
        """(record id, probabilities) of every record of a shard corpus made with the model's recipe."""
        made = read_manifest(path).recipe
        differ = [f"{key} {getattr(made, key)} (the model's: {getattr(self.recipe, key)})"
                  for key in ("rate_hz", "seconds", "filter", "leads") if getattr(made, key) != getattr(self.recipe, key)]
        if differ:
            raise ValueError(f"corpus {path} was made with another recipe than the model was trained on: "
                             f"{'; '.join(differ)}")
        data = ShardDataset(path, transform=self.transform)
        ids = read_metadata(path, ["record_id"])
        for start in range(0, len(data), batch):
            positions = list(range(start, min(start + batch, len(data))))
            with torch.no_grad():
                probs = torch.sigmoid(self.model(data.__getitems__(positions)["signal"])).numpy()
            for p, row in zip(positions, probs):
                yield ids["record_id"][p], row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdist.predict", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a fine-tune job's model.pth, or a Hub reference hf://OWNER/REPO/FILE[@REV]")
    parser.add_argument("records", nargs="+")
    parser.add_argument("--top", type=int, default=5, help="labels shown per record (all with --json)")
    parser.add_argument("--json", action="store_true", help="one JSON object per record")
    parser.add_argument("--explain", type=Path, metavar="OUT.png",
                        help="draw the record (one WFDB record) on ECG paper with integrated-gradients attributions "
                             "of its top classes")
    parser.add_argument("--trust-type", action="append", default=[], choices=sorted(PLAIN_DATA_TYPES),
                        help="a class the weights file may hold besides tensors (plain data you trust)")
    args = parser.parse_args(argv)
    try:
        classifier = Classifier(args.model, args.trust_type)
    except (FileNotFoundError, ValueError, CheckpointMismatchError) as error:  # UnreadableWeights, ConfigError too
        print(f"error: {error}", file=sys.stderr)
        return 2
    if classifier.simulated:
        print(f"# {SIMULATED_NOTE}", file=sys.stderr if args.json else sys.stdout)
    if args.explain:
        return explain(classifier, args.records, args.explain)
    failed = 0
    for item in args.records:
        try:
            if (Path(item) / MANIFEST_NAME).exists():
                results = list(classifier.corpus(item))
            else:
                probabilities, note = classifier.record(item)
                if note:
                    print(f"note: {note}", file=sys.stderr)
                results = [(item, probabilities)]
        except (RecordError, ValueError) as error:  # an unreadable record; an invalid, corrupt or other corpus
            print(f"{item}: cannot classify: {str(error).strip().splitlines()[-1]}", file=sys.stderr)
            failed += 1
            continue
        for name, probs in results:
            ranked = sorted(zip(classifier.classes, probs.tolist()), key=lambda kv: -kv[1])
            if args.json:
                print(json.dumps({"record": str(name), "probabilities": dict(ranked),
                                  "simulated": classifier.simulated}))
            else:
                print(f"{name}: " + ", ".join(f"{label} {p:.2f}" for label, p in ranked[:args.top]))
    return 1 if failed else 0


def explain(classifier: Classifier, records: list[str], out: Path) -> int:
    """``--explain``: one record's picture (finetune/explain.py)."""
    from ecgdist.finetune.explain import explain_record

    if len(records) != 1 or (Path(records[0]) / MANIFEST_NAME).exists():
        print("error: --explain draws one WFDB record: give exactly one", file=sys.stderr)
        return 2
    try:
        explanation = explain_record(classifier, records[0], out)
    except (RecordError, ValueError) as error:
        print(f"{records[0]}: cannot explain: {str(error).strip().splitlines()[-1]}", file=sys.stderr)
        return 1
    shown = ", ".join(f"{name} {p:.2f}" for name, p in explanation.probabilities.items())
    print(f"{records[0]}: {shown}; drawn with its attributions to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
