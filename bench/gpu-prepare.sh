#!/usr/bin/env bash
# What a lent GPU machine needs beside the working tree, gathered here into .gpu/ (git ignores it;
# about 9 MB): the wheels bench/gpu-wheels.txt lists, fetched for that machine's Python (3.12,
# x86-64; nothing can be downloaded there), and the ten real PTB-XL records the benchmarks
# replicate (../shared/data does not travel). Then, on that machine, `bash bench/gpu.sh $OUT`
# with .gpu carried installs the wheels and reads the records from there (docs/benchmarks.md).
#
#   bash bench/gpu-prepare.sh          (GPU_PYTHON_VERSION=3.11 for a machine with that Python)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${ECGDIST_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
version=${GPU_PYTHON_VERSION:-3.12}
records=${ECGDIST_SHARED_DATA:-../shared/data}/ptbxl-mini/records500/06000
pins=$(grep -v '^#' bench/gpu-wheels.txt)
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/data/ptbxl-mini/records500
cp -r "$records" .gpu/data/ptbxl-mini/records500/
platforms=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do platforms+=(--platform "${p}_x86_64"); done
# shellcheck disable=SC2046
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
  "${platforms[@]}" -d .gpu/wheels $(grep -v '^deepspeed==' <<<"$pins")
# DeepSpeed publishes no wheel: build its pure-Python one here (no ops compiled in; the shipped
# configs use torch's optimizer, so none is built there either).
DS_BUILD_OPS=0 "$python" -m pip wheel -q --no-deps --no-build-isolation -w .gpu/wheels "$(grep '^deepspeed==' <<<"$pins")"
echo "$(ls .gpu/wheels | wc -l) wheels and $(ls .gpu/data/ptbxl-mini/records500/06000 | wc -l) record files," \
  "$(du -sh .gpu | cut -f1), in .gpu/: carry .gpu with bash bench/gpu.sh \$OUT"
