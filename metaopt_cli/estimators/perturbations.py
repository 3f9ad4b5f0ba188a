"""Gaussian perturbations of θ and the particles that carry them, shared by ES and PES, with
their value checks."""
from dataclasses import dataclass
from functools import cached_property

import torch

from ..distributed import PARTICLES, Rows, World
from ..errors import UserError
from .problem import Tensors


def check_particles_and_sigma(particles: int, sigma: float) -> None:
    if particles < 1:
        raise UserError(f"estimator.particles must be at least 1 (antithetic pairs), got {particles}")
    if not sigma > 0:
        raise UserError(f"estimator.sigma must be positive, got {sigma}: try estimator.sigma=0.01")


def gaussian(meta_params: Tensors, particles: int, sigma: float, generator: torch.Generator) -> Tensors:
    """ε ~ N(0, σ²I) for each of `particles` draws, stacked on a leading axis."""
    return {
        name: sigma * torch.randn((particles, *value.shape), generator=generator, device=value.device, dtype=value.dtype)
        for name, value in meta_params.items()
    }


def antithetic(meta_params: Tensors, noise: Tensors, centre: bool = True) -> Tensors:
    """θ + ε for every draw, then θ − ε, then (where `centre`) θ itself, whose loss is reported."""
    return {
        name: torch.cat([value + noise[name], value - noise[name], *([value.unsqueeze(0)] if centre else [])])
        for name, value in meta_params.items()
    }


@dataclass(frozen=True)
class Particles:
    """The particles one rank runs: a block of the P antithetic pairs (rank 0 adds θ itself).
    Every rank draws all P perturbations, so that particle p's is the same whoever runs it."""

    world: World
    count: int  # P, over all ranks

    @cached_property
    def mine(self) -> range:
        return self.world.block(self.count, PARTICLES)

    def own(self, noise: Tensors) -> Tensors:
        """This rank's pairs' perturbations, from the whole draw `noise`."""
        return {name: value[self.mine.start:self.mine.stop] for name, value in noise.items()}

    def candidates(self, meta_params: Tensors, own_noise: Tensors) -> Tensors:
        """This rank's θ + ε_p, then θ − ε_p, then θ on rank 0, from its perturbations `own_noise`."""
        return antithetic(meta_params, own_noise, centre=self.world.main)

    @property
    def candidate_rows(self) -> Rows:
        """Where this rank's candidates sit among all 2P + 1: pluses, minuses, then θ."""
        mine = list(self.mine)
        return Rows([*mine, *(self.count + p for p in mine), *([2 * self.count] if self.world.main else [])],
                    2 * self.count + 1)

    @property
    def pair_rows(self) -> Rows:
        return Rows(list(self.mine), self.count)

    def all_losses(self, losses: torch.Tensor) -> torch.Tensor:
        """The losses of all 2P + 1 candidates, from this rank's."""
        return self.world.assemble(losses, self.candidate_rows)

    def estimate(self, differences: torch.Tensor, own_noise: Tensors, scale: float) -> Tensors:
        """Σ_p differences[p]·noise[p]·scale over all P: each rank's pairs, summed over ranks."""
        return self.world.sum(weighted_sum(differences[self.mine.start:self.mine.stop], own_noise, scale))


def weighted_sum(weights: torch.Tensor, noise: Tensors, scale: float) -> Tensors:
    """Σ_p weights[p]·noise[p] · scale, per meta-parameter."""
    return {name: torch.tensordot(weights, value, dims=1) * scale for name, value in noise.items()}
