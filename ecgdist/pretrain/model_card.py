"""The model card an export pushed to the Hub carries (its README.md): what the weights are,
what they were trained on and what was left out of it, under whose terms, and how to load them.

Everything in it is read from the export itself (config, recipe, step, provenance) and from
the manifests its provenance names, so the card cannot say more than the file can back.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ecgdist.data.shards import read_manifest
from ecgdist.models import count_parameters

# The publishers' terms for each source preprocess reads (docs/data.md); check them before use.
SOURCE_TERMS = {
    "ptbxl": "PTB-XL 1.0.3: CC BY 4.0, open (PhysioNet)",
    "physionet2021": "PhysioNet/CinC Challenge 2021: CC BY 4.0, open (PhysioNet)",
    "code15": "CODE-15 %: CC BY 4.0, open (Zenodo record 4916206)",
    "mimic-iv-ecg": "MIMIC-IV-ECG 1.0: ODbL 1.0, open access on PhysioNet; linking it to MIMIC-IV clinical data "
                    "needs credentialed access",
}
ARCHITECTURES = {
    "net1d": "ECGFounder Net1D (a 1-D RegNet-style CNN with squeeze-excitation), supervised multi-label",
    "mtecg_mae": "MTECG masked autoencoder (a ViT over 12-lead segment tokens), self-supervised",
    "mtecg_cls": "MTECG ViT classifier",
}


def terms(source: str, simulated: bool) -> str:
    if simulated:
        return "SIMULATED records made by ecgdist (python -m preprocess simulate): no real ECGs, no terms"
    return SOURCE_TERMS.get(source, f"{source}: the terms of whoever owns these records (not a public corpus "
                                    "ecgdist knows); check them before sharing these weights")


def model_card(extra: dict, model: nn.Module, repo: str, filename: str) -> str:
    """README.md for ``repo`` holding the export ``filename`` (its ``extra``: everything but the tensors)."""
    cfg, recipe, provenance = extra["config"], extra["recipe"], extra["provenance"]
    m, d = cfg["model"], cfg["data"]
    name = m["name"]
    shape = (f"widths {m['widths']}, blocks {m['blocks']}" if name == "net1d" else
             f"size {m['size']}, {m['patch_samples']}-sample segments" +
             (f", mask ratio {m['mask_ratio']}" if name == "mtecg_mae" else ""))
    corpora = []
    for corpus in provenance["corpora"]:
        manifest = read_manifest(corpus["path"])
        corpora.append(f"| {Path(corpus['path']).name} | {manifest.recipe.source} | {manifest.records:,} | "
                       f"`{corpus['manifest_sha256']}` | {terms(manifest.recipe.source, bool(manifest.extra.get('simulated')))} |")
    left_out = provenance.get("exclude_from")
    exclusion = (f"{provenance['excluded']:,} records were left out of pre-training: every record of folds "
                 f"{', '.join(map(str, left_out['folds']))} of `{Path(left_out['path']).name}` (manifest sha256 "
                 f"`{left_out['manifest_sha256']}`), matched by content and by identity, so that evaluations on those "
                 "folds are of records the model never saw." if left_out else
                 "No evaluation folds were left out of pre-training (`data.exclude_from` was not set): do not "
                 "evaluate these weights on records of the corpora above.")
    fingerprints = provenance.get("fingerprints")
    simulated = "\n**SIMULATED: trained on ecgdist's synthetic ECGs, not on real recordings.**\n" \
        if extra.get("simulated") else ""
    return f"""---
library_name: ecgdist
license: other
tags: [ecg, electrocardiogram, ecgdist, {name}]
---

# {repo.split('/')[-1]}
{simulated}
{ARCHITECTURES.get(name, name)}: `{name}`, {shape}, **{count_parameters(model):,} parameters**,
pre-trained with ecgdist for {extra['step']:,} steps (of `train.steps`
{cfg['train']['steps']:,}); {len(extra['labels'])} training labels.

## Input

{len(d['leads'])} leads ({', '.join(d['leads'])}), {recipe['rate_hz']} Hz, windows of {recipe['seconds']:g} s
cropped to {d['crop_samples']:,} samples, filter `{recipe['filter']}`, normalisation `{d['normalize']}`.
Records made with another rate, filter or normalisation give other inputs than these weights learnt
from: shard them with `python -m preprocess` and this recipe (a fine-tune refuses a corpus made otherwise).

## Training data

| corpus | source | records | manifest sha256 | licence, access |
|---|---|---|---|---|
{chr(10).join(corpora) or '| unknown | | | | |'}

{exclusion} The export lists the content fingerprints of the
{f'{len(fingerprints):,}' if fingerprints is not None else 'unknown number of'} records it could train
on, so a fine-tune can check that its evaluation records are not among them.

## Use

```bash
python -m ecgdist.submit finetune configs/finetune/ptbxl.yaml data.corpus=DIR finetune.weights=hf://{repo}/{filename}
python -m ecgdist.embed hf://{repo}/{filename} CORPUS embeddings.h5
```

`{filename}` holds the weights with the config, labels, recipe and provenance above
({'safetensors: tensors and JSON metadata, no pickle' if filename.endswith('.safetensors') else 'torch.save'}).
"""
