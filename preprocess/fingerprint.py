"""``python -m preprocess fingerprint CORPUS INPUT``: add content fingerprints to an older corpus.

Fingerprints are taken from the source records (data/fingerprint.py), so the input the
corpus was made from is read again, through the corpus's own source reader. Every record
of the corpus must be found there; the result is one ``index/fingerprint.npy`` written by
an atomic rename, so an interrupted run changes nothing and a rerun starts over.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ecgdist.data.fingerprint import record_fingerprint
from ecgdist.data.index import FINGERPRINT, INDEX_DIR, read_index, save_array, write_checksums
from ecgdist.data.shards import read_manifest, read_metadata
from preprocess.record import SourceError
from preprocess.sources import SOURCES


def add_fingerprints(corpus: Path, input_dir: Path, progress: bool = True) -> int:
    """Fingerprint every record of ``corpus`` from ``input_dir``; returns how many records."""
    manifest = read_manifest(corpus)
    reader = SOURCES[manifest.recipe.source]
    items, _ = reader.list_items(Path(input_dir), manifest.recipe.rate_hz)
    by_record = {f"{manifest.recipe.source}:{item.key}": item for item in items}
    records = [record_id.rsplit("#", 1)[0] for record_id in read_metadata(corpus, ["record_id"], manifest)["record_id"]]
    missing = sorted({r for r in records if r not in by_record})
    if missing:
        raise SourceError(f"{len(missing)} records of {corpus} are not in {input_dir} (first: "
                          f"{', '.join(missing[:3])}): give the folder the corpus was made from")
    fingerprints: dict[str, int] = {}
    for record in tqdm(sorted(set(records)), unit="rec", desc="fingerprints", disable=not progress):
        fingerprints[record] = record_fingerprint(reader.read_item(by_record[record]))
    read_index(corpus, manifest)  # the other index arrays must exist and be current
    save_array(corpus / INDEX_DIR, FINGERPRINT, np.array([fingerprints[r] for r in records], dtype=np.uint64))
    write_checksums(corpus / INDEX_DIR)
    return len(records)
