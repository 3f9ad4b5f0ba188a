"""Persistent evolution strategies (Vicol, Metz & Sohl-Dickstein, ICML 2021).

The unroll is cut into windows of T steps as in truncated backprop, but each particle keeps
its own inner state from window to window and accumulates the perturbations it has seen, so
the estimate is unbiased for the full horizon's smoothed meta-loss — no truncation bias —
with memory that grows with neither K nor T.
"""
import torch
from torch.func import vmap

from .perturbations import antithetic, check_particles_and_sigma, gaussian, weighted_sum
from .problem import Problem, Tensors
from .truncation import check_truncation, check_truncation_fits, windows
from .unroll import unroll


class PES:
    def __init__(self, particles: int, sigma: float, truncation: int):
        check_particles_and_sigma(particles, sigma)
        check_truncation(truncation)
        self.particles, self.sigma, self.truncation = particles, sigma, truncation

    def check_horizon(self, horizon: int | None) -> None:
        check_truncation_fits(self.truncation, horizon)

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        self.check_horizon(problem.horizon)
        count, scale = self.particles, 1.0 / (2 * self.particles * self.sigma**2)
        grads = {name: torch.zeros_like(value) for name, value in meta_params.items()}
        accumulated = {name: torch.zeros((count, *value.shape), dtype=value.dtype, device=value.device)
                       for name, value in meta_params.items()}
        with torch.no_grad():
            for start, stop in windows(problem.horizon, self.truncation):
                noise = gaussian(meta_params, count, self.sigma, generator)
                candidates = antithetic(meta_params, noise)  # particle p+ and p− share |ξ_p|, opposite signs
                if start == 0:
                    # The first state may depend on θ (MAML's initialisation does): perturbed too.
                    states = vmap(problem.init)(candidates)
                states, losses = vmap(
                    lambda candidate, state: unroll(problem, candidate, state, start, stop)
                )(candidates, states)
                for name in accumulated:
                    accumulated[name] += noise[name]
                # PES: this window's losses times the perturbations accumulated so far.
                for name, grad in weighted_sum(losses[:count] - losses[count:-1], accumulated, scale).items():
                    grads[name] += grad
                meta_loss = losses[-1] if start == 0 else meta_loss + losses[-1]
        return grads, {"meta_loss": meta_loss}
