#!/usr/bin/env bash
# One call on a machine with a GPU: install, the CUDA tests, `metaopt bench` on CUDA, then
# MAML against higher and torchopt (Conv-4 and ResNet-12, both batchings; ResNet-12 also with
# TF32 and bf16 autocast, with their accuracy cost), and meta-training as ranks on the node's
# GPUs (NCCL): torchrun end to end, and scripts/bench_scaling.py at 1 … N ranks. Sized to
# finish in a few minutes. Results land in $OUT (or ./gpu_check): text, and bench/ with bench.json and
# bench.png.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check}"
mkdir -p "$out"
pip install -q -e ".[dev,bench]"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
python -m pytest -q -m cuda -rs 2>&1 | tee "$out/cuda_tests.txt"
metaopt bench trainer.device=cuda logger=none hydra.run.dir="$out/bench" 2>&1 | tee "$out/bench.txt"
for backbone in conv4 resnet12; do
  for batching in vmap loop; do
    python scripts/bench_maml.py --device cuda --backbone "$backbone" --batching "$batching" --iterations 20 2>&1 \
      | tee "$out/bench_maml_${backbone}_${batching}.txt"
  done
done
for precision in tf32 bf16; do
  python scripts/bench_maml.py --device cuda --backbone resnet12 --precision "$precision" --iterations 20 2>&1 \
    | tee "$out/bench_maml_resnet12_vmap_${precision}.txt"
done
gpus=$(nvidia-smi -L | wc -l)
ranks=$(seq -s, 1 "$gpus")
OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node="$gpus" -m metaopt_cli train task=maml estimator=backprop \
  trainer.meta_batch=8 trainer.meta_steps=20 logger=none trainer.progress=false hydra.run.dir="$out/torchrun" 2>&1 \
  | tee "$out/torchrun.txt"
python scripts/bench_scaling.py --device cuda --ranks "$ranks" --steps 20 2>&1 | tee "$out/bench_scaling.txt"
