"""Antithetic evolution strategies: finite differences of the loss along random directions,
from unrolls that keep no graph — memory constant in K."""
import torch

from .. import distributed
from .particlewise import particle_losses
from .perturbations import Particles, check_particles_and_sigma, gaussian
from .problem import Problem, Tensors


class ES:
    splits_particles = True

    def __init__(self, particles: int, sigma: float, rank_shaping: bool):
        check_particles_and_sigma(particles, sigma)
        self.particles, self.sigma, self.rank_shaping = particles, sigma, rank_shaping

    def check_horizon(self, horizon: int | None) -> None:
        """Any horizon works; memory does not grow with it."""

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        """∇ E[L(θ + ε)] ≈ Σ_p (L(θ+ε_p) − L(θ−ε_p)) ε_p / (2Pσ²): unbiased for the
        Gaussian-smoothed meta-loss. A rank's unrolls run as one batch."""
        count = self.particles
        particles = Particles(distributed.current(), count)
        with torch.no_grad():
            own_noise = particles.own(gaussian(meta_params, count, self.sigma, generator))
            own = particle_losses(problem, particles.candidates(meta_params, own_noise))
            losses = particles.all_losses(own)  # rank shaping needs every particle's loss
            fitness = centered_ranks(losses[: 2 * count]) if self.rank_shaping else losses[: 2 * count]
            differences = fitness[:count] - fitness[count:]
            grads = particles.estimate(differences, own_noise, 1.0 / (2 * count * self.sigma**2))
        return grads, {"meta_loss": losses[-1], "perturbed_loss_std": losses[: 2 * count].std()}


def centered_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks scaled to [−0.5, 0.5] (Salimans et al. 2017): robust to the losses' scale and
    outliers, at the price of estimating a direction rather than the gradient."""
    ranks = torch.empty_like(values)
    ranks[values.argsort()] = torch.arange(len(values), dtype=values.dtype, device=values.device)
    return ranks / (len(values) - 1) - 0.5 if len(values) > 1 else torch.zeros_like(values)
