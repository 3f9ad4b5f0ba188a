"""An estimate computed by all ranks of a job together, equal to one process's."""
import torch

from ..distributed import META_BATCH, PARTICLES, World
from .problem import Problem, Tensors, share
from .protocol import declares


def estimate(estimator, problem: Problem, meta_params: Tensors, generator: torch.Generator,
             world: World) -> tuple[Tensors, dict]:
    """The estimator's estimate of dL/dθ for the whole `problem`. An estimator that splits its
    particles does so itself; any other estimates on this rank's block of the meta-batch, and
    the blocks' gradients and metrics are averaged, weighted by their share of the meta-batch
    (the problem's meta-loss is the mean over its inner runs)."""
    if world.size == 1 or declares(type(estimator), "splits_particles"):
        return estimator.estimate(problem, meta_params, generator)
    mine = share(problem, world)
    grads, metrics = estimator.estimate(mine, meta_params, generator)
    weight = len(mine.runs.index) / problem.meta_batch
    grads = world.sum({name: grad * weight for name, grad in grads.items()})
    device = next(iter(grads.values())).device
    values = world.sum({"metrics": torch.stack([torch.as_tensor(value, device=device).to(torch.float64) * weight
                                                for value in metrics.values()])})["metrics"]
    return grads, dict(zip(metrics, values))


def check_ranks(estimator: type, estimator_cfg, meta_batch: int, world: World) -> None:
    """Before any work: each rank must get at least one of what it splits."""
    if declares(estimator, "splits_particles"):
        world.block(estimator_cfg.particles, PARTICLES)
    else:
        world.block(meta_batch, META_BATCH)
