"""``python -m ecgdist.probe RUN_DIR --step N``: the command; the code is ecgdist/pretrain/probe_offline.py."""

import sys

from ecgdist.pretrain.probe_offline import main

if __name__ == "__main__":
    sys.exit(main())
