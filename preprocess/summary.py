"""What a corpus holds, for ``python -m preprocess inspect`` and the end-of-run summary."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from ecgdist.data.shards import read_manifest, read_rejected


def corpus_summary(corpus: Path, top_labels: int = 20) -> dict:
    manifest = read_manifest(corpus)
    rejected = read_rejected(corpus)
    # Group by the kind of reason: "bad CSV row (line 7): ..." and "... (line 9): ..." are one kind.
    reasons = Counter(re.sub(r"\s*\(.*?\)", "", r["reason"].split(":")[0]) for r in rejected)
    return {"corpus": str(corpus), "records": manifest.records, "inputs": manifest.inputs,
            "written_inputs": manifest.written_inputs, "rejected": manifest.rejected,
            "shards": len(manifest.shards), "bytes": sum(s.bytes for s in manifest.shards),
            "recipe": manifest.recipe.to_dict(), "labels": len(manifest.labels),
            "label_histogram": dict(Counter(manifest.labels).most_common(top_labels)),
            "rejection_reasons": dict(reasons.most_common()), "simulated": bool(manifest.extra.get("simulated"))}


def format_summary(s: dict) -> str:
    r = s["recipe"]
    lines = [f"corpus {s['corpus']}" + ("   ** SIMULATED ECGs, not real recordings **" if s["simulated"] else ""),
             f"  recipe   {r['source']} at {r['rate_hz']} Hz, {r['seconds']} s windows, filter {r['filter']}, "
             f"{r['dtype']}, format {r['format_version']}",
             f"  inputs   {s['inputs']} = {s['written_inputs']} written + {s['rejected']} rejected",
             f"  records  {s['records']} windows in {s['shards']} shards ({s['bytes'] / 1e6:.1f} MB)",
             f"  labels   {s['labels']} codes; most common: "
             + ", ".join(f"{k} {v}" for k, v in list(s["label_histogram"].items())[:10])]
    for reason, count in s["rejection_reasons"].items():
        lines.append(f"  rejected {count:6d} x {reason}")
    return "\n".join(lines)
