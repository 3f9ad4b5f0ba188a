"""Peak tensor memory of one meta-step per estimator as the horizon K grows.

    python scripts/bench_memory.py [--horizons 10 50 200] [--truncation 10] [--device cpu]

Composes the real configs (digits distillation by default; pass Hydra overrides after
`--`), measures one meta-step of each estimator with metaopt_cli.memory.measure_peak and
prints a table plus one JSON line. Backprop's memory grows with K, checkpointed backprop's
with √K, truncated backprop's stays at its window's.
"""
import argparse
import json
import time

import torch
from hydra import compose, initialize_config_module

from metaopt_cli.build import build, build_task, pick_device
from metaopt_cli.config.store import register_configs
from metaopt_cli.memory import measure_peak

ESTIMATORS = {
    "backprop": ["estimator=backprop"],
    "backprop+checkpoint": ["estimator=backprop", "estimator.checkpoint=true"],
    "tbptt": ["estimator=tbptt"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizons", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--truncation", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. task.images_per_class=10")
    args = parser.parse_args()
    register_configs()
    device = pick_device(args.device)
    rows = []
    with initialize_config_module("metaopt_cli.conf", version_base="1.3"):
        for horizon in args.horizons:
            for name, choice in ESTIMATORS.items():
                extra = [f"estimator.truncation={args.truncation}"] if name == "tbptt" else []
                cfg = compose("train", [*args.overrides, *choice, *extra, f"task.horizon={horizon}"])
                task, estimator = build_task(cfg, device), build(cfg.estimator)
                generator = torch.Generator(device).manual_seed(0)
                meta_params = task.init_meta_params(generator)
                problem = task.sample(generator, cfg.trainer.meta_batch)
                started = time.perf_counter()
                _, peak = measure_peak(lambda: estimator.estimate(problem, meta_params, generator), device)
                rows.append({"estimator": name, "horizon": horizon, "peak_mem_bytes": peak,
                             "seconds": round(time.perf_counter() - started, 3)})
    print(f"{'K':>5}  " + "".join(f"{name:>22}" for name in ESTIMATORS))
    for horizon in args.horizons:
        cells = [r for r in rows if r["horizon"] == horizon]
        print(f"{horizon:>5}  " + "".join(f"{r['peak_mem_bytes'] / 2**20:>19.2f} MiB" for r in cells))
    print(json.dumps({"device": str(device), "truncation": args.truncation, "rows": rows}))


if __name__ == "__main__":
    main()
