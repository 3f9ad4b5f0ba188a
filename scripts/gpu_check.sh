#!/usr/bin/env bash
# One call on a machine with a GPU, well inside 10 minutes: install, the CUDA tests, `metaopt
# bench` on CUDA, MAML against higher and torchopt (scripts/bench_maml.py: Conv-4 and ResNet-12
# at 84x84, each precision, eager and compiled), meta-training as ranks on the node's GPUs
# (torchrun end to end, scripts/bench_scaling.py at 1 … N ranks), and one JSON line of the
# headline figures at the end. Results land in $OUT (or ./gpu_check): text, bench/ with
# bench.json and bench.png, and headline.json.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check}"
mkdir -p "$out"
pip install -q -e ".[dev,bench]"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
python -m pytest -q -m cuda -rs 2>&1 | tee "$out/cuda_tests.txt"
metaopt bench trainer.device=cuda logger=none hydra.run.dir="$out/bench" 2>&1 | tee "$out/bench.txt"
for backbone in conv4 resnet12; do
  for precision in fp32 tf32 bf16; do
    python scripts/bench_maml.py --device cuda --backbone "$backbone" --precision "$precision" --iterations 10 2>&1 \
      | tee "$out/bench_maml_${backbone}_${precision}_none.txt"
  done
  python scripts/bench_maml.py --device cuda --backbone "$backbone" --compile compile --iterations 10 2>&1 \
    | tee "$out/bench_maml_${backbone}_fp32_compile.txt"
done
gpus=$(nvidia-smi -L | wc -l)
ranks=$(seq -s, 1 "$gpus")
OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node="$gpus" -m metaopt_cli train task=maml estimator=backprop \
  trainer.meta_batch=8 trainer.meta_steps=20 logger=none trainer.progress=false hydra.run.dir="$out/torchrun" 2>&1 \
  | tee "$out/torchrun.txt"
python scripts/bench_scaling.py --device cuda --ranks "$ranks" --steps 20 2>&1 | tee "$out/bench_scaling.txt"
# The headline: each benchmark's last line is its JSON.
python - "$out" <<'PY' | tee "$out/headline.json"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
last = lambda path: json.loads(path.read_text().strip().splitlines()[-1])
maml = {}
for path in sorted(out.glob("bench_maml_*.txt")):
    run = last(path)
    maml[path.stem.removeprefix("bench_maml_")] = {
        "metaopt_ms": run["metaopt_ms"], "vs_higher": run["speedup_vs_higher"], "vs_torchopt": run["speedup_vs_torchopt"],
        "peak_GiB": run["metaopt_peak_bytes"] / 2**30, "precision_rel_diff": run["precision_rel_diff"]}
print(json.dumps({"bench_maml": maml, "scaling": last(out / "bench_scaling.txt")["scaling"]}))
PY
