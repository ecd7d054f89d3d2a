#!/usr/bin/env bash
# Everything that needs a GPU, in one command of at most 8 minutes (issue 32):
#   1. the CUDA tests (tests/test_cuda.py: device paths, bf16/fp16, batch autoscaling,
#      out-of-memory halving, the GPU worker split);
#   2. the 1080p test file, made here (bench/make_videos.py --only v1080_g250.mp4);
#   3. bench/gpu_check.py: decode alone, model alone, end to end and views/s of timesformer and
#      timesformer-hr, the device's name; a Markdown section for BENCHMARKS.md.
#
# Usage: bench/gpu.sh [SECTION.md]   (default: $OUT/gpu.md when $OUT is set, else bench/out/gpu.md)
#        GPU_SECONDS=20 bench/gpu.sh  (a shorter file, if the 60-s one does not fit the time)
#        bench/gpu.sh --smoke         (on a CPU: the same steps with tiny models and a 3-s file)
#
# Setup on a bare machine: no venv and no internet. It uses the machine's own python3 when that
# has torch with CUDA (else a carried .venv/bin/python that has). What that python lacks (PyAV,
# pytest) comes from wheels carried in .whl/ (made here with bench/gpu_wheels.sh), installed with
# --no-index into a scratch folder; vidcls and vidcls_dev run from this tree via PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then SMOKE=1; shift; fi
SECTION=${1:-${OUT:+$OUT/gpu.md}}
SECTION=${SECTION:-bench/out/gpu.md}
mkdir -p "$(dirname "$SECTION")"

has_cuda() { "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; }
PY=python3
if [[ $SMOKE == 0 ]] && ! has_cuda "$PY" && [[ -x .venv/bin/python ]] && has_cuda .venv/bin/python; then
    PY=.venv/bin/python
fi
[[ $SMOKE == 1 ]] && [[ -x .venv/bin/python ]] && PY=.venv/bin/python

SITE=${TMPDIR:-/tmp}/vidcls-gpu-site
lacks() { ! "$PY" -c "import $1" 2>/dev/null; }
if { lacks av || lacks pytest; } && compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$ROOT:$ROOT/dev:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

"$PY" - <<'PY'
import importlib.util, sys
missing = [m for m in ("torch", "av", "einops", "typer", "rich", "safetensors", "msgpack",
                       "numpy", "huggingface_hub", "transformers", "pytest")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing: {', '.join(missing)}: carry their wheels in .whl/ (bench/gpu_wheels.sh)")
import torch, vidcls
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA "
      f"{torch.cuda.is_available()}, vidcls from {vidcls.__file__}")
PY

started=$SECONDS
step() { echo "== $1 ($((SECONDS - started)) s so far)"; }

if [[ $SMOKE == 1 ]]; then
    step "CUDA tests (smoke: collected, skipped without CUDA)"
    "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py
    VIDEOS=${TMPDIR:-/tmp}/vidcls-gpu-smoke
    step "test file"
    "$PY" bench/make_videos.py --out "$VIDEOS" --only v1080_g250.mp4 --seconds 3
    step "decode, model, end to end (tiny, CPU)"
    "$PY" bench/gpu_check.py --device cpu --tiny --video "$VIDEOS/v1080_g250.mp4" --append "$SECTION"
else
    step "CUDA tests"
    timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py
    step "test file"
    timeout 120 "$PY" bench/make_videos.py --only v1080_g250.mp4 --seconds "${GPU_SECONDS:-60}"
    step "decode, model, end to end"
    timeout 240 "$PY" bench/gpu_check.py --append "$SECTION"
fi
step "done: $SECTION"
