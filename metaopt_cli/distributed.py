"""One meta-training job as several ranks: torch.distributed, started by torchrun or by SLURM.

A split must never change the estimate. Every rank draws every random number of a meta-step
from the same generator (the whole meta-batch's problems, every particle's perturbation: cheap
beside the unrolls), so problem i and particle p are the same whichever rank computes them;
each rank then computes its own block of them, and the results are summed across ranks. The
generator therefore advances identically everywhere, and θ and the outer optimizer, updated
from the same summed meta-gradient, stay identical on every rank.
"""
import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import UserError

Tensors = dict[str, torch.Tensor]

# What ranks split, as a message names it.
PARTICLES = "estimator.particles (antithetic pairs)"
META_BATCH = "trainer.meta_batch (inner problems per meta-step)"


class LostRank(Exception):
    """A collective failed: another rank of the job died or became unreachable."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the rank among this node's ranks: which GPU it takes
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 owns the run directory: metrics, summary, pictures, checkpoints, W&B."""
        return self.rank == 0

    def block(self, count: int, what: str) -> range:
        """This rank's contiguous share of `count` items; the first count % size ranks take one more."""
        if count < self.size:
            raise UserError(f"{self.size} ranks but {what} is {count}: each rank needs at least one; "
                            f"start at most {count} rank{'s' if count != 1 else ''}, or raise {what.split()[0]} to at least "
                            f"{self.size}")
        base, extra = divmod(count, self.size)
        start = self.rank * base + min(self.rank, extra)
        return range(start, start + base + (self.rank < extra))

    def sum(self, tensors: Tensors) -> Tensors:
        """Σ over ranks, in place, as one flat buffer (one collective, not one per tensor)."""
        if self.size > 1 and tensors:
            values = list(tensors.values())
            flat = torch.cat([value.reshape(-1) for value in values])
            _collective(dist.all_reduce, flat)
            for value, reduced in zip(values, flat.split([value.numel() for value in values])):
                value.copy_(reduced.view_as(value))
        return tensors

    def assemble(self, local: torch.Tensor, rows: "Rows") -> torch.Tensor:
        """The whole tensor whose rows `rows` this rank holds as `local`: every rank writes its
        rows into zeros and the ranks' tensors are summed, which is exact."""
        if self.size == 1 and rows.index == list(range(rows.total)):
            return local
        whole = local.new_zeros((rows.total, *local.shape[1:]))
        whole[rows.tensor(local.device)] = local
        _collective(dist.all_reduce, whole)
        return whole

    def max(self, value: int) -> int:
        """The largest of the ranks' values (a signal to one rank stops all at the same step)."""
        if self.size == 1:
            return value
        held = torch.tensor([value], dtype=torch.int64)
        _collective(dist.all_reduce, held, op=dist.ReduceOp.MAX)
        return int(held.item())

    def broadcast(self, tensors: Tensors) -> None:
        """Rank 0's values everywhere, in place."""
        if self.size > 1:
            for value in tensors.values():
                _collective(dist.broadcast, value, src=0)

    def broadcast_text(self, text: str | None) -> str:
        if self.size == 1:
            return text
        holder = [text]
        _collective(dist.broadcast_object_list, holder, src=0)
        return holder[0]


@dataclass(frozen=True)
class Rows:
    """Which rows of a tensor split across ranks (along its first axis) this rank holds."""

    index: list[int]
    total: int

    def tensor(self, device: torch.device) -> torch.Tensor:
        return torch.tensor(self.index, device=device, dtype=torch.long)

    def take(self, whole: torch.Tensor) -> torch.Tensor:
        return whole[self.tensor(whole.device)]


@dataclass(frozen=True)
class Sharded:
    """A rank's rows of a tensor whose other rows other ranks hold: what a checkpoint keeps of
    a rank's part of an inner state until it is saved, assembled whole."""

    local: torch.Tensor
    rows: Rows


def gathered(state, world: World):
    """`state` with every Sharded in it assembled whole (a collective: every rank calls it, on
    states of the same structure)."""
    if isinstance(state, Sharded):
        return world.assemble(state.local, state.rows)
    if isinstance(state, dict):
        return {key: gathered(value, world) for key, value in state.items()}
    if isinstance(state, list):
        return [gathered(value, world) for value in state]
    return state


def _collective(operation, *args, **kwargs) -> None:
    try:
        operation(*args, **kwargs)
    except (RuntimeError, dist.DistError) as error:
        raise LostRank(_first_sentence(error)) from None


def _first_sentence(error: Exception) -> str:
    """gloo's and NCCL's messages, without the source location they start with and the advice after."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip().splitlines()[0] if str(error).strip() else "")
    return text.split(". ")[0].rstrip(".") or type(error).__name__


_world = World()


def current() -> World:
    """The job's world: one rank unless `join` started torch.distributed."""
    return _world


def launched_world() -> World:
    """The world torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
    LOCAL_WORLD_SIZE); one rank where there is none."""
    if "RANK" not in os.environ:
        return World()
    return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def submitit_world() -> World:
    """The tasks of a job that submitit started (hydra/launcher=slurm or local, with several
    tasks per node), each running the Hydra job itself: submitit reads SLURM's (or its local
    executor's) task variables into the ones torch.distributed reads. One rank otherwise."""
    if "SUBMITIT_EXECUTOR" not in os.environ or "RANK" in os.environ:
        return World()
    from submitit.helpers import TorchDistributedEnvironment

    tasks = TorchDistributedEnvironment()
    if tasks.world_size == 1:
        return World()
    tasks.export(set_cuda_visible_devices=False)  # each rank picks cuda:LOCAL_RANK itself
    return launched_world()


def join(world: World) -> None:
    """Start torch.distributed for this rank: gloo for CPU tensors, NCCL for CUDA ones where
    CUDA is present (one group serves both)."""
    global _world
    if world.size == 1:
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    except (RuntimeError, ValueError, dist.DistError) as error:
        raise UserError(f"rank {world.rank} of {world.size} could not join the job ({_first_sentence(error)}): check MASTER_ADDR and "
                        "MASTER_PORT (torchrun --rdzv-endpoint=HOST:PORT) and that every node reaches it") from None
    _world = world


def leave() -> None:
    global _world
    if dist.is_initialized():
        dist.destroy_process_group()
    _world = World()
