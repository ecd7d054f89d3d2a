#!/usr/bin/env bash
# Download, here (with internet), the wheels bench/gpu.sh installs on the GPU machine (no
# internet there): what vidcls and its tests need that the GPU image (python 3.12, torch with
# CUDA, einops, typer, rich, msgpack, safetensors, transformers, numpy) lacks. Into .whl/, which
# git ignores and the device run carries as an untracked path.
#
# Usage: bench/gpu_wheels.sh [PYTHON_VERSION]   (default 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${1:-3.12}
mkdir -p .whl
# PyAV bundles its FFmpeg; pytest and its own dependencies run the CUDA tests
python3 -m pip download -q --dest .whl --only-binary=:all: \
    --python-version "$PYV" --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    "av>=14" "pytest>=8"
ls -l .whl
