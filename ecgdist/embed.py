"""``python -m ecgdist.embed WEIGHTS CORPUS OUT``: one embedding per record, for analyses outside ecgdist.

WEIGHTS is an ecgdist export or a fine-tune job's model.pth (both say their architecture
and input recipe), the released ECGFounder file, or a Hub reference to one of these. An
embedding is the model's own pooled features (``models.pooled_features``: Net1D's mean over
time, the ViT's CLS token or mean; an MAE export's encoder), of each
record's window from offset 0, cropped and normalised as its fine-tunes see it.

OUT is one HDF5 file that pandas, R or MATLAB read: ``embedding`` (records, D) float32 and,
row by row, ``record_id``, ``patient_id``, ``labels`` (;-separated) and ``fold`` (the
corpus's own or made folds, 0 when none). It is written as OUT.partial, in blocks whose
count is stored after each one, and renamed when complete: an interrupted run resumes
where it stopped. Batched, through the corpus's loader workers, on the GPU when there is one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

from ecgdist.config import DataSection, ModelSection, from_dict
from ecgdist.data.dataset import ShardDataset
from ecgdist.data.index import read_index
from ecgdist.data.loader import make_loader
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.shards import INPUT_FIELDS, read_manifest, read_metadata
from ecgdist.data.transforms import Transform
from ecgdist.files import file_sha256
from ecgdist.models import build_model, pooled_features
from ecgdist.models.hub import locate_weights
from ecgdist.models.pretrained import CheckpointMismatchError, load_pretrained, read_weights
from ecgdist.safe_load import PLAIN_DATA_TYPES

def feature_model(weights: str, trusted_types: list[str] = ()) -> tuple[torch.nn.Module, DataSection, dict]:
    """The weights' classifier architecture, loaded (head aside), the input section it was trained with,
    and the file's recipe (empty for the released ECGFounder file: its architecture and defaults)."""
    state, extra = read_weights(weights, trusted_types)
    config = extra.get("config") or {}
    section = from_dict(ModelSection, config["model"]) if "model" in config else ModelSection()
    if section.name == "mtecg_mae":  # the autoencoder's encoder is the classifier's backbone
        section = ModelSection(name="mtecg_cls", size=section.size, patch_samples=section.patch_samples)
    section = dataclasses.replace(section, num_classes=0, drop_path=0.0)
    given = config.get("data", {})
    data = DataSection(**{k: given[k] for k in ("crop_samples", "normalize", "leads") if k in given})
    model = build_model(section, len(data.leads), data.crop_samples, 1)
    load_pretrained(model, weights, reset_head=True, trusted_types=trusted_types, state=state)
    return model.eval(), data, dict(extra.get("recipe") or {})


def check_recipe(corpus: Path, recipe: dict) -> None:
    made = read_manifest(corpus).recipe.to_dict()
    differ = [f"{k} {made[k]} (corpus) vs {recipe[k]} (weights)" for k in INPUT_FIELDS
              if k in recipe and recipe[k] != made[k]]
    if differ:
        raise ValueError(f"corpus {corpus} was made with another recipe than the weights were trained on: "
                         f"{'; '.join(differ)}; make it with that recipe (python -m preprocess ... --rate/--filter)")


def open_partial(path: Path, corpus: Path, weights_sha256: str, dimension: int) -> h5py.File:
    """OUT.partial: the one an earlier run of the same weights on the same corpus left, or a new one
    holding every record's metadata."""
    records = read_manifest(corpus).records
    if path.exists():
        f = h5py.File(path, "r+")
        if (f.attrs.get("weights_sha256"), f.attrs.get("records"), f["embedding"].shape[1]) == \
                (weights_sha256, records, dimension):
            return f
        f.close()
        path.unlink()  # another model's or corpus's rows: start over
    table = read_metadata(corpus, ["record_id", "patient_id", "labels"])
    f = h5py.File(path, "w")
    f.create_dataset("embedding", (records, dimension), np.float32, chunks=(max(1, min(records, 1024)), dimension))
    for name in ("record_id", "patient_id", "labels"):
        f.create_dataset(name, data=table[name].astype(object), dtype=h5py.string_dtype())
    f.create_dataset("fold", data=read_index(corpus).fold)
    f.attrs.update({"weights_sha256": weights_sha256, "records": records, "corpus": str(corpus), "done": 0})
    return f


def embed_corpus(weights: str, corpus: str | Path, out: str | Path, batch_size: int = 256, workers: int = 2,
                 trusted_types: list[str] = (), progress: bool = True) -> Path:
    corpus, out = Path(corpus), Path(out)
    if out.exists():  # renamed into place only when complete
        return out
    model, data, recipe = feature_model(weights, trusted_types)
    check_recipe(corpus, recipe)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    dimension = model.get_classifier().in_features  # the pooled features the head reads
    partial = out.with_name(out.name + ".partial")
    with open_partial(partial, corpus, file_sha256(locate_weights(weights)), dimension) as f:
        done, records = int(f.attrs["done"]), int(f.attrs["records"])
        transform = Transform(data.crop_samples, False, data.normalize, tuple(data.leads))
        dataset = ShardDataset(corpus, np.arange(done, records), transform=transform, device_transform=True)
        loader = make_loader(dataset, BlockBatchSampler(dataset.shards_of(), batch_size, shuffle=False), workers)
        with tqdm(total=records, initial=done, unit="rec", desc="embeddings", disable=not progress) as bar:
            for batch in loader:
                rows = batch["index"].numpy() + done
                if rows[0] != int(f.attrs["done"]) or np.any(np.diff(rows) != 1):
                    raise RuntimeError("the loader gave records out of storage order")  # resuming counts on it
                with torch.no_grad():
                    signal = dataset.to_device(batch, device)["signal"]
                    features = pooled_features(model, signal)
                f["embedding"][rows[0]:rows[-1] + 1] = features.float().cpu().numpy()
                f.attrs["done"] = int(rows[-1]) + 1
                f.flush()
                bar.update(len(rows))
    os.replace(partial, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdist.embed", description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="an export, a model.pth, the released ECGFounder file, or hf://OWNER/REPO/FILE")
    parser.add_argument("corpus", type=Path, help="a shard corpus made with the weights' recipe")
    parser.add_argument("out", type=Path, help="the HDF5 file to write")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="loader processes")
    parser.add_argument("--trust-type", action="append", default=[], choices=sorted(PLAIN_DATA_TYPES),
                        help="a class the weights file may hold besides tensors (plain data you trust)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        out = embed_corpus(args.weights, args.corpus, args.out, args.batch_size, args.workers, args.trust_type,
                           not args.quiet)
    except (FileNotFoundError, ValueError, CheckpointMismatchError) as error:  # UnreadableWeights, ConfigError too
        print(f"error: {error}", file=sys.stderr)
        return 2
    with h5py.File(out, "r") as f:
        print(f"{out}: {f['embedding'].shape[0]} embeddings of dimension {f['embedding'].shape[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
