#!/usr/bin/env bash
# The wheels bench/gpu-wheels.txt lists, fetched here for a lent GPU machine's Python (3.12,
# x86-64; nothing can be downloaded there) into .whl/, about 7 MB. Then, on that machine,
# `bash bench/gpu.sh $OUT` with .whl carried installs them before it measures (docs/benchmarks.md).
#
#   bash bench/gpu-wheels.sh          (GPU_PYTHON_VERSION=3.11 for a machine with that Python)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${ECGDIST_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
version=${GPU_PYTHON_VERSION:-3.12}
pins=$(grep -v '^#' bench/gpu-wheels.txt)
rm -rf .whl && mkdir .whl
platforms=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do platforms+=(--platform "${p}_x86_64"); done
# shellcheck disable=SC2046
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
  "${platforms[@]}" -d .whl $(grep -v '^deepspeed==' <<<"$pins")
# DeepSpeed publishes no wheel: build its pure-Python one here (no ops compiled in; the shipped
# configs use torch's optimizer, so none is built there either).
DS_BUILD_OPS=0 "$python" -m pip wheel -q --no-deps --no-build-isolation -w .whl "$(grep '^deepspeed==' <<<"$pins")"
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1), in .whl/: carry .whl with bash bench/gpu.sh \$OUT"
