"""Meta-steps per second of one job at 1, 2, … ranks (torch.distributed, gloo on CPUs, NCCL on
GPUs): the speed-up and the efficiency (speed-up / ranks) of splitting ES/PES particles and of
splitting a meta-batch's tasks (MAML, backprop) across ranks.

Each setting is what `metaopt train` runs per meta-step (trainer.meta_step: sample, estimate
with every rank's share summed across ranks, outer Adam step), timed between barriers after a
warm-up; ranks are local processes started as torchrun starts them, each with --threads threads,
so that 1 rank × 1 thread and 2 ranks × 1 thread compare like with like on a 2-core machine.

    python scripts/bench_scaling.py --ranks 1,2 --steps 10
    python scripts/bench_scaling.py --device cuda --ranks 1,2,4,8     # a node's GPUs, one per rank

The last line printed is one JSON object with the figures.
"""
import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from metaopt_cli import distributed
from metaopt_cli.build import build, build_task, pick_device
from metaopt_cli.config.store import register_configs
from metaopt_cli.trainer import meta_step

# What is split: the particles of es and pes (a distillation's synthetic set learned by ES),
# and the tasks of a MAML meta-batch.
SETTINGS = {
    "es": ["task=distill", "estimator=es", "estimator.particles=32", "task.horizon=40", "trainer.meta_batch=4",
           "backbone.hidden=[128]"],
    "pes": ["task=distill", "estimator=pes", "estimator.particles=32", "estimator.truncation=20", "task.horizon=40",
            "trainer.meta_batch=4", "backbone.hidden=[128]"],
    "maml": ["task=maml", "estimator=backprop", "data=digits", "task.ways=5", "task.shots=5", "task.queries=15",
             "task.horizon=5", "backbone.hidden=[256,256]", "trainer.meta_batch=8", "task.batching=loop"],
}


def _rank(rank: int, ranks: int, port: int, overrides: list[str], args: argparse.Namespace, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(ranks), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(ranks),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    world = distributed.launched_world()
    distributed.join(world)
    try:
        register_configs()
        with initialize_config_module("metaopt_cli.conf", version_base="1.3"):
            cfg = compose(config_name="train", overrides=[*overrides, f"trainer.device={args.device}"])
        GlobalHydra.instance().clear()
        device = pick_device(cfg.trainer.device, world)
        torch.manual_seed(cfg.trainer.seed)
        task, estimator = build_task(cfg, device), build(cfg.estimator)
        generator = torch.Generator(device).manual_seed(cfg.trainer.seed)
        meta_params = {name: value.requires_grad_() for name, value in task.init_meta_params(generator).items()}
        optimizer = torch.optim.Adam(meta_params.values(), lr=cfg.trainer.outer_lr)
        for step in range(args.warmup + args.steps):
            if step == args.warmup:
                _synchronise(world, device)
                started = time.perf_counter()
            meta_step(task, estimator, meta_params, optimizer, generator, cfg.trainer, world, measure=False)
        _synchronise(world, device)
        if world.main:
            Path(out).write_text(json.dumps({"seconds": time.perf_counter() - started}))
    finally:
        distributed.leave()


def _synchronise(world, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if world.size > 1:
        dist.barrier()


def steps_per_second(ranks: int, overrides: list[str], args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as folder, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        out = str(Path(folder) / "result.json")
        mp.start_processes(_rank, args=(ranks, port, overrides, args, out), nprocs=ranks, start_method="spawn")
        return args.steps / json.loads(Path(out).read_text())["seconds"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1,2", help="comma-separated numbers of ranks")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"of {', '.join(SETTINGS)}")
    parser.add_argument("--steps", type=int, default=10, help="timed meta-steps per run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    counts = [int(count) for count in args.ranks.split(",")]
    figures = {}
    for name in args.settings.split(","):
        rates = {ranks: steps_per_second(ranks, SETTINGS[name], args) for ranks in counts}
        base = rates[counts[0]] / counts[0]  # one rank's rate (the first count is 1 as a rule)
        figures[name] = {str(ranks): {"steps_per_s": round(rate, 3), "speedup": round(rate / rates[counts[0]], 3),
                                      "efficiency": round(rate / (base * ranks), 3)} for ranks, rate in rates.items()}
        for ranks, row in figures[name].items():
            print(f"{name:5s} ranks={ranks}: {row['steps_per_s']:.3f} meta-steps/s, speed-up {row['speedup']:.2f}×, "
                  f"efficiency {row['efficiency']:.2f}", flush=True)
    print(json.dumps({"device": args.device, "threads_per_rank": args.threads, "steps": args.steps,
                      "scaling": figures}))


if __name__ == "__main__":
    sys.exit(main())
