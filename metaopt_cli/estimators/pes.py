"""Persistent evolution strategies (Vicol, Metz & Sohl-Dickstein, ICML 2021).

The unroll is cut into windows of T steps as in truncated backprop, but each particle keeps
its own inner state from window to window and accumulates the perturbations it has seen, so
the estimate is unbiased for the full horizon's smoothed meta-loss — no truncation bias —
with memory that grows with neither K nor T. Online, θ is updated after every window while
the particles' runs go on.
"""
import torch
from torch.func import vmap

from .perturbations import antithetic, check_particles_and_sigma, gaussian, weighted_sum
from .problem import Problem, Tensors
from .truncation import Unroll, check_truncation, check_truncation_fits, online_weight, windows
from .unroll import unroll


class PES:
    needs_inner_loop = True

    def __init__(self, particles: int, sigma: float, truncation: int, online: bool):
        check_particles_and_sigma(particles, sigma)
        check_truncation(truncation)
        self.particles, self.sigma, self.truncation, self.online = particles, sigma, truncation, online
        self.unroll: Unroll | None = None  # online: the particles' runs in progress

    def check_horizon(self, horizon: int | None) -> None:
        check_truncation_fits(self.truncation, horizon)

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        self.check_horizon(problem.horizon)
        if self.online:
            if self.unroll is None or self.unroll.finished:
                self.unroll = self._start(problem, meta_params)
            start, stop = self.unroll.next_window(self.truncation)
            grads, loss = self._window(self.unroll, meta_params, generator, stop)
            weight = online_weight(problem, start, stop)
            return {name: grad * weight for name, grad in grads.items()}, {"meta_loss": loss * weight,
                                                                          "inner_step": stop}
        run = self._start(problem, meta_params)
        grads = {name: torch.zeros_like(value) for name, value in meta_params.items()}
        meta_loss = 0.0
        for _, stop in windows(problem.horizon, self.truncation):
            window_grads, loss = self._window(run, meta_params, generator, stop)
            for name, grad in window_grads.items():
                grads[name] += grad
            meta_loss = meta_loss + loss
        return grads, {"meta_loss": meta_loss}

    def _start(self, problem: Problem, meta_params: Tensors) -> Unroll:
        accumulated = {name: torch.zeros((self.particles, *value.shape), dtype=value.dtype, device=value.device)
                       for name, value in meta_params.items()}
        return Unroll(problem, state=None, extras={"accumulated": accumulated})

    def _window(self, run: Unroll, meta_params: Tensors, generator: torch.Generator, stop: int):
        """Advance every particle to `stop`: the window's gradient estimate and the loss of
        the unperturbed run."""
        count, accumulated = self.particles, run.extras["accumulated"]
        with torch.no_grad():
            noise = gaussian(meta_params, count, self.sigma, generator)
            candidates = antithetic(meta_params, noise)  # particles p+ and p− carry ±ξ_p
            if run.state is None:
                # The first state may depend on θ (MAML's initialisation does): perturbed too.
                run.state = vmap(run.problem.init)(candidates)
            run.state, losses = vmap(
                lambda candidate, state: unroll(run.problem, candidate, state, run.step, stop)
            )(candidates, run.state)
            run.step = stop
            for name in accumulated:
                accumulated[name] += noise[name]
            # PES: this window's losses times the perturbations accumulated so far.
            grads = weighted_sum(losses[:count] - losses[count:-1], accumulated, 1.0 / (2 * count * self.sigma**2))
        return grads, losses[-1]

    def state_dict(self) -> dict:
        return {"unroll": self.unroll}

    def load_state_dict(self, state: dict) -> None:
        self.unroll = state["unroll"]
