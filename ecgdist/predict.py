"""``python -m ecgdist.predict MODEL RECORD...``: the command; the code is ecgdist/finetune/predict.py."""

import sys

from ecgdist.finetune.predict import main

if __name__ == "__main__":
    sys.exit(main())
