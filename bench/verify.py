"""What checking shards against their manifest costs: sha256 against a plain read of the same bytes.

    python bench/verify.py [--records 2000]

A corpus of real records replicated (120 MB shards of 1,000 records), page-cached; best
of 3. ``sha256_vs_read`` is hashing's rate over a plain read's: how much a training job's
first read of each shard slows down when it is verified (shards.verified_once).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import best_rate, emit, replicated_corpus

from ecgdist.files import file_sha256


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecgdist-verify-"))
    try:
        shards = sorted(replicated_corpus(work / "corpus", args.records).glob("shard-*.h5"))
        total = sum(p.stat().st_size for p in shards)

        def read() -> int:
            for path in shards:
                with open(path, "rb") as f:
                    while f.read(1 << 22):
                        pass
            return total

        def hashed() -> int:
            for path in shards:
                file_sha256(path)
            return total

        read(), hashed()  # warm the page cache
        read_rate, hash_rate = best_rate(read), best_rate(hashed)
        print(f"plain read {read_rate / 1e9:.2f} GB/s, sha256 {hash_rate / 1e9:.2f} GB/s per process")
        emit({"bytes": total, "read_gb_per_s": round(read_rate / 1e9, 2), "sha256_gb_per_s": round(hash_rate / 1e9, 2),
              "sha256_vs_read": round(hash_rate / read_rate, 3)})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
