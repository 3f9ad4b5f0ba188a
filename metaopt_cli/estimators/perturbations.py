"""Gaussian perturbations of θ, shared by ES and PES, with their value checks."""
import torch

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


def antithetic(meta_params: Tensors, noise: Tensors) -> Tensors:
    """θ + ε for every draw, then θ − ε, then θ itself (whose loss is reported)."""
    return {
        name: torch.cat([value + noise[name], value - noise[name], value.unsqueeze(0)])
        for name, value in meta_params.items()
    }


def weighted_sum(weights: torch.Tensor, noise: Tensors, scale: float) -> Tensors:
    """Σ_p weights[p]·noise[p] · scale, per meta-parameter."""
    return {name: torch.tensordot(weights, value, dims=1) * scale for name, value in noise.items()}
