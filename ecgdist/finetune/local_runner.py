"""``python -m ecgdist.finetune.local_runner SWEEP_DIR``: serves a local sweep's queue.

``python -m ecgdist.submit finetune ... --cluster local`` starts it detached and returns;
it starts queued jobs as slots free (``slurm.array_parallelism``, one per GPU) and exits
when none is queued or running. Its pid and log are in the sweep folder's sweep.json.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ecgdist.finetune.sweep import run_local_queue


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    (sweep_dir,) = sys.argv[1:] if argv is None else argv
    run_local_queue(Path(sweep_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
