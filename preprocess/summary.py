"""What a corpus holds, for ``python -m preprocess inspect`` and the end-of-run summary."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from ecgdist.data.index import index_problems
from ecgdist.data.shards import read_manifest, read_rejected, verify_shards


def corpus_summary(corpus: Path, top_labels: int = 20, verify: bool = False) -> dict:
    """``verify``: also check every shard against the manifest (sizes, then sha256: reads every byte)."""
    manifest = read_manifest(corpus)
    rejected = read_rejected(corpus)
    # Group by the kind of reason: "bad CSV row (line 7): ..." and "... (line 9): ..." are one kind.
    reasons = Counter(re.sub(r"\s*\(.*?\)", "", r["reason"].split(":")[0]) for r in rejected)
    return {"corpus": str(corpus), "records": manifest.records, "inputs": manifest.inputs,
            "written_inputs": manifest.written_inputs, "rejected": manifest.rejected,
            "shards": len(manifest.shards), "bytes": sum(s.bytes for s in manifest.shards),
            "recipe": manifest.recipe.to_dict(), "labels": len(manifest.labels),
            "label_histogram": dict(Counter(manifest.labels).most_common(top_labels)),
            "rejection_reasons": dict(reasons.most_common()), "simulated": bool(manifest.extra.get("simulated")),
            "shard_problems": verify_shards(corpus, manifest) + index_problems(corpus) if verify else None}


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
    if s["shard_problems"] is not None:
        lines.append(f"  shards   all {s['shards']} and the index match the manifest (size, sha256, records)"
                     if not s["shard_problems"]
                     else f"  shards   {len(s['shard_problems'])} of {s['shards']} do NOT match the manifest:")
        lines += [f"  CORRUPT  {problem}" for problem in s["shard_problems"]]
    return "\n".join(lines)
