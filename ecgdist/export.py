"""``python -m ecgdist.export RUN_DIR OUT``: the command; the code is ecgdist/pretrain/export.py."""

import sys

from ecgdist.pretrain.export import main

if __name__ == "__main__":
    sys.exit(main())
