"""Runs of `metaopt train` in this process, and as several ranks of one job in local processes
(gloo), started the way torchrun starts them: the environment names each its rank."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from metaopt_cli import distributed, trainer
from metaopt_cli.config.store import register_configs
from metaopt_cli.trainer import train


def train_here(overrides: list[str], run_dir: Path) -> dict | None:
    """`metaopt train` with these overrides, in this process, into run_dir (resuming the run
    there, if it has a checkpoint)."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module("metaopt_cli.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    GlobalHydra.instance().clear()
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    run_dir.mkdir(parents=True, exist_ok=True)
    dtype = torch.get_default_dtype()
    try:
        return train(cfg, choices, run_dir, "ranks", "test")
    finally:
        torch.set_default_dtype(dtype)  # trainer.dtype sets it for the rest of a process


def train_as_ranks(ranks: int, runs: list[tuple[list[str], Path]]) -> None:
    """Each (overrides, run_dir) trained by `ranks` processes together, one run after another."""
    port = _free_port()
    mp.start_processes(_rank, args=(ranks, port, runs), nprocs=ranks, start_method="spawn", join=True)


def held_state(run_dir: Path, rank: int) -> dict:
    """θ and the outer optimizer's state as rank `rank` held them at the run's last checkpoint."""
    return torch.load(run_dir / f"held.rank{rank}.pt", weights_only=True)


def _rank(rank: int, ranks: int, port: int, runs: list[tuple[list[str], Path]]) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(ranks), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(ranks),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    distributed.join(distributed.launched_world())
    try:
        for overrides, run_dir in runs:
            _keep_held_state(run_dir, rank)
            train_here(overrides, run_dir)
    finally:
        distributed.leave()


def _keep_held_state(run_dir: Path, rank: int) -> None:
    """Every rank writes what it holds whenever the trainer takes a checkpoint's state (only
    rank 0's reaches checkpoint.pt), so that a test can compare the ranks."""
    take = getattr(trainer._checkpoint, "taken", trainer._checkpoint)

    def taking(*args, **kwargs) -> dict:
        state = take(*args, **kwargs)
        torch.save({"meta_params": state["meta_params"], "optimizer": state["optimizer"]},
                   run_dir / f"held.rank{rank}.pt")
        return state

    taking.taken = take
    trainer._checkpoint = taking


def start_ranks(ranks: int, args: list[str], cwd: Path, env: dict | None = None) -> list[subprocess.Popen]:
    """`python -m metaopt_cli <args>` as `ranks` processes of one job, each told its rank in the
    environment as torchrun tells it (no agent in between, so what a test sees is metaopt's own)."""
    port = _free_port()
    base = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **(env or {})}
    base.pop("HYDRA_FULL_ERROR", None)
    return [subprocess.Popen([sys.executable, "-m", "metaopt_cli", *args], cwd=cwd, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**base, "RANK": str(rank), "WORLD_SIZE": str(ranks), "LOCAL_RANK": str(rank),
                                  "LOCAL_WORLD_SIZE": str(ranks), "MASTER_ADDR": "127.0.0.1",
                                  "MASTER_PORT": str(port)})
            for rank in range(ranks)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
