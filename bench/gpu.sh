#!/usr/bin/env bash
# The GPU figures in one prepared run (bench/gpu.py says what it measures): about 6 minutes
# on one H100/H200; without a GPU, a CPU smoke pass of the same steps.
#
#   bash bench/gpu.sh [OUT_DIR] [--only STEP ...]   -> OUT_DIR/gpu.json, OUT_DIR/summary.md, OUT_DIR/logs/
set -euo pipefail
cd "$(dirname "$0")/.."
python=${ECGDIST_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$python" bench/gpu.py "${@:-bench-gpu}"
