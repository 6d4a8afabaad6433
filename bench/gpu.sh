#!/usr/bin/env bash
# The GPU figures in one prepared run (bench/gpu.py says what it measures): about 6 minutes
# on one H100/H200; without a GPU, a CPU smoke pass of the same steps. On a lent machine, carry
# the .gpu/ that bench/gpu-prepare.sh gathers: its wheels are installed first, its records read.
#
#   bash bench/gpu.sh [OUT_DIR] [--only STEP ...]   -> OUT_DIR/gpu.json, OUT_DIR/summary.md, OUT_DIR/logs.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
python=${ECGDIST_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
# The carried wheels only where this Python lacks what setup.cfg requires (the image does); then
# the check again, which names each package still missing and ends the call, in a second.
if ! "$python" bench/preflight.py 2>/dev/null; then
  if compgen -G ".gpu/wheels/*.whl" >/dev/null; then
    site=${TMPDIR:-/tmp}/ecgdist-gpu-site
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .gpu/wheels/*.whl
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
  fi
  "$python" bench/preflight.py
fi
if [ -d .gpu/data ] && [ -z "${ECGDIST_SHARED_DATA:-}" ]; then
  export ECGDIST_SHARED_DATA=$PWD/.gpu/data
fi
exec "$python" bench/gpu.py "${@:-bench-gpu}"
