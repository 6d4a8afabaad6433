#!/usr/bin/env bash
# Every benchmark at tiny sizes, so that none can rot unnoticed: CI runs this beside
# `make test` (`make bench-smoke`). The figures are not judged; each script must run to its
# last line, one JSON object, and bench/gpu.sh takes its CPU smoke pass.
#
#   bash bench/smoke.sh [NAME ...]       (all of them: a few minutes on two cores)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${ECGDIST_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

declare -A commands=(
  [preprocess]="bench/preprocess.py --records 40 --scale-records 30 --index-records 3000"
  [loader]="bench/loader.py --records 256 --wfdb-records 32 --batch 16 --processes 1"
  [models]="bench/models.py --batch 1 --steps 1 --no-compile"
  [train]="bench/train.py --steps 2 --warmup 1 --repeats 1 --stages 0 --fp32-only"
  [leakage]="bench/leakage.py --train-records 20000 --eval-records 12000"
  [verify]="bench/verify.py --records 100"
  [shuffle]="bench/shuffle.py --shards 10 --shard-size 10 --batch 16"
  [probe]="bench/probe.py --batch 2 --rounds 1"
  [gpu]="bench/gpu.sh $out/gpu"  # through its wrapper, as a GPU machine runs it
)
order=(preprocess loader models train leakage verify shuffle probe gpu)
names=("${@:-${order[@]}}")
for name in "${names[@]}"; do
  [ -n "${commands[$name]:-}" ] || { echo "[smoke] no benchmark named $name (${order[*]})"; exit 2; }
  started=$SECONDS
  runner=("$python")
  [[ ${commands[$name]} == *.sh\ * ]] && runner=(bash)
  # shellcheck disable=SC2086  # the arguments are words
  if ! ECGDIST_PYTHON=$python "${runner[@]}" ${commands[$name]} >"$out/$name.log" 2>&1; then
    tail -40 "$out/$name.log"
    echo "[smoke] $name FAILED: ${runner[*]} ${commands[$name]}"
    exit 1
  fi
  if ! tail -1 "$out/$name.log" | "$python" -c 'import json, sys; assert isinstance(json.loads(sys.stdin.read()), dict)'; then
    tail -20 "$out/$name.log"
    echo "[smoke] $name did not end with one JSON object"
    exit 1
  fi
  echo "[smoke] $name ok in $((SECONDS - started)) s"
done
