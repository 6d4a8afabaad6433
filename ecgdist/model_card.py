"""The model card an export pushed to the Hub carries (its README.md): what the weights are,
what they were trained on and what was left out of it, under whose terms, how well a
fine-tuned one did (its results-table row), and how to load them.

Everything in it is read from the export itself (config, recipe, step, provenance, result)
and from the manifests it names, so the card cannot say more than the file can back.
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


def corpus_row(path: str, sha256: str) -> str:
    """A corpus as a row of the card's data table: name, source, records, manifest checksum, terms."""
    manifest = read_manifest(path)
    return (f"| {Path(path).name} | {manifest.recipe.source} | {manifest.records:,} | `{sha256}` | "
            f"{terms(manifest.recipe.source, bool(manifest.extra.get('simulated')))} |")


def model_card(extra: dict, model: nn.Module, repo: str, filename: str) -> str:
    """README.md for ``repo`` holding the export ``filename`` (its ``extra``: everything but the tensors):
    a fine-tuned model's card when the export carries a job's result, else a pre-trained one's."""
    cfg, recipe = extra["config"], extra["recipe"]
    m, d = cfg["model"], cfg["data"]
    name = m["name"]
    shape = (f"widths {m['widths']}, blocks {m['blocks']}" if name == "net1d" else
             f"size {m['size']}, {m['patch_samples']}-sample segments" +
             (f", mask ratio {m['mask_ratio']}" if name == "mtecg_mae" else ""))
    simulated = "\n**SIMULATED: trained on ecgdist's synthetic ECGs, not on real recordings.**\n" \
        if extra.get("simulated") else ""
    body = finetuned_sections(extra, repo, filename) if "result" in extra else pretrained_sections(extra, repo, filename)
    return f"""---
library_name: ecgdist
license: other
tags: [ecg, electrocardiogram, ecgdist, {name}{', fine-tuned' if 'result' in extra else ''}]
---

# {repo.split('/')[-1]}
{simulated}
{ARCHITECTURES.get(name, name)}: `{name}`, {shape}, **{count_parameters(model):,} parameters**,
{body['summary']}

## Input

{len(d['leads'])} leads ({', '.join(d['leads'])}), {recipe['rate_hz']} Hz, windows of {recipe['seconds']:g} s
cropped to {d['crop_samples']:,} samples, filter `{recipe['filter']}`, normalisation `{d['normalize']}`.
Records made with another rate, filter or normalisation give other inputs than these weights learnt
from: shard them with `python -m preprocess` and this recipe (a fine-tune refuses a corpus made otherwise).
{body['sections']}
## Use

```bash
{body['use']}
```

`{filename}` holds the weights with the config, {'classes, recipe and result' if 'result' in extra else 'labels, recipe and provenance'} above
({'safetensors: tensors and JSON metadata, no pickle' if filename.endswith('.safetensors') else 'torch.save'}).
"""


def pretrained_sections(extra: dict, repo: str, filename: str) -> dict[str, str]:
    """A pre-training export's card: its steps, its corpora, what was left out of them."""
    cfg, provenance = extra["config"], extra["provenance"]
    corpora = [corpus_row(c["path"], c["manifest_sha256"]) for c in provenance["corpora"]]
    left_out = provenance.get("exclude_from")
    exclusion = (f"{provenance['excluded']:,} records were left out of pre-training: every record of folds "
                 f"{', '.join(map(str, left_out['folds']))} of `{Path(left_out['path']).name}` (manifest sha256 "
                 f"`{left_out['manifest_sha256']}`), matched by content and by identity, so that evaluations on those "
                 "folds are of records the model never saw." if left_out else
                 "No evaluation folds were left out of pre-training (`data.exclude_from` was not set): do not "
                 "evaluate these weights on records of the corpora above.")
    fingerprints = provenance.get("fingerprints")
    return {
        "summary": f"pre-trained with ecgdist for {extra['step']:,} steps (of `train.steps`\n"
                   f"{cfg['train']['steps']:,}); {len(extra['labels'])} training labels.",
        "sections": f"""
## Training data

| corpus | source | records | manifest sha256 | licence, access |
|---|---|---|---|---|
{chr(10).join(corpora) or '| unknown | | | | |'}

{exclusion} The export lists the content fingerprints of the
{f'{len(fingerprints):,}' if fingerprints is not None else 'unknown number of'} records it could train
on, so a fine-tune can check that its evaluation records are not among them.
""",
        "use": f"python -m ecgdist.submit finetune configs/finetune/ptbxl.yaml data.corpus=DIR "
               f"finetune.weights=hf://{repo}/{filename}\npython -m ecgdist.embed hf://{repo}/{filename} CORPUS "
               "embeddings.h5"}


def listed_records(provenance: dict) -> str:
    """What a fine-tuned export says of the records its weights trained on, for the next fine-tune's check."""
    if provenance.get("fingerprints") is None:
        return "The export lists no training records" + (f": {provenance['note']}." if provenance.get("note") else ".")
    listed = (f"The export lists the content fingerprints of the {len(provenance['fingerprints']):,} records its "
              "weights trained on (the backbone's and the fine-tune's), so a later fine-tune can check its "
              "evaluation records against them")
    return listed + (f"; the list is incomplete: {provenance['note']}." if not provenance.get("complete", True) else ".")


def finetuned_sections(extra: dict, repo: str, filename: str) -> dict[str, str]:
    """A fine-tuned export's card: its task and classes, its results-table row, its data and folds."""
    cfg, result = extra["config"], extra["result"]
    corpus = extra["corpus"]
    records = result["records"]
    pretraining = result["pretraining_data"]
    of_epochs = f" of {result['epochs_trained']}" if result.get("epochs_trained") else ""  # older exports: unknown
    selected = f"epoch {result['selected_epoch']}{of_epochs}" if result["selected_epoch"] is not None else \
        f"a logistic-regression read-out, C = {(result.get('linear_fit') or {}).get('c')}"
    return {
        "summary": f"fine-tuned with ecgdist on {result['benchmark']} `{result['task']}` (strategy "
                   f"`{result['strategy']}`, label fraction {result['fraction']:g}, seed {result['seed']}) from "
                   f"`{cfg['finetune']['weights'] or 'random weights'}`; {len(extra['classes'])} classes: "
                   f"{', '.join(extra['classes'])}.",
        "sections": f"""
## Results

Macro AUROC / AUPRC on the test fold, read once with the weights that fold-9 validation selected
({selected}, validation macro AUROC {result['val_macro_auroc']:.4f}); the interval is a
bootstrap over test records.

{extra['results_table']}
## Training data

| corpus | source | records | manifest sha256 | licence, access |
|---|---|---|---|---|
{corpus_row(corpus['path'], corpus['manifest_sha256'])}

{records['train']:,} training records, {records['val']:,} validation records (model selection),
{records['test']:,} test records. Pre-training data against the evaluation folds: **{pretraining['status']}**
({pretraining['detail']}). {listed_records(extra.get('provenance') or {})}
""",
        "use": f"python -m ecgdist.predict hf://{repo}/{filename} RECORD.hea\n"
               f"python -m ecgdist.predict hf://{repo}/{filename} RECORD.hea --explain explain.png"}
