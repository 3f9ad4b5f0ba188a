#!/usr/bin/env bash
# One call on a machine with a GPU: install, the CUDA tests, then the benchmarks on CUDA.
# Sized to finish in a few minutes. Results land in $OUT (or ./gpu_check) as text.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check}"
mkdir -p "$out"
pip install -q -e ".[dev]"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
python -m pytest -q -m cuda -rs 2>&1 | tee "$out/cuda_tests.txt"
python scripts/bench_memory.py --device cuda --horizons 10 50 200 2>&1 | tee "$out/bench_memory.txt"
