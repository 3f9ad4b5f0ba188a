"""Persistent evolution strategies (Vicol, Metz & Sohl-Dickstein, ICML 2021).

The unroll is cut into windows of T steps as in truncated backprop, but each particle keeps
its own inner state from window to window and accumulates the perturbations it has seen, so
the estimate is unbiased for the full horizon's smoothed meta-loss — no truncation bias —
with memory that grows with neither K nor T. Online, θ is updated after every window while
the particles' runs go on.
"""
import torch

from .. import distributed
from ..distributed import Rows
from .particlewise import Particlewise, unroll_particles
from .perturbations import Particles, check_particles_and_sigma, gaussian
from .problem import Problem, Tensors
from .state import InnerRun, OnlineRuns, Resample, check_stagger
from .truncation import check_truncation, check_truncation_fits, online_weight, windows


class PES:
    needs_inner_loop = True
    splits_particles = True

    def __init__(self, particles: int, sigma: float, truncation: int, online: bool, stagger: bool = False):
        check_particles_and_sigma(particles, sigma)
        check_truncation(truncation)
        check_stagger(stagger, online)
        self.particles, self.sigma, self.truncation, self.online = particles, sigma, truncation, online
        self.runs = OnlineRuns(stagger, layout=self._layout)  # online: the particles' runs in progress

    def check_horizon(self, horizon: int | None) -> None:
        check_truncation_fits(self.truncation, horizon)

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        self.check_horizon(problem.horizon)
        if self.online:
            return self._online_window(problem, meta_params, generator)
        run = self._start(InnerRun(problem, None, None), meta_params)
        grads = {name: torch.zeros_like(value) for name, value in meta_params.items()}
        meta_loss = 0.0
        for _, stop in windows(problem.horizon, self.truncation):
            window_grads, loss = self._window(run, meta_params, generator, stop)
            for name, grad in window_grads.items():
                grads[name] += grad
            meta_loss = meta_loss + loss
        return grads, {"meta_loss": meta_loss}

    def _online_window(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        """The next window of each inner run in progress (a run that reached its horizon starts
        again on this meta-step's `problem`); the runs weigh equally."""
        runs = self.runs.current(problem, lambda run, offset: self._start(run, meta_params, generator, offset))
        grads = {name: torch.zeros_like(value) for name, value in meta_params.items()}
        meta_loss = 0.0
        for run in runs:
            start, stop = run.next_window(self.truncation)
            window_grads, loss = self._window(run, meta_params, generator, stop)
            weight = online_weight(run.problem, start, stop) / len(runs)
            for name, grad in window_grads.items():
                grads[name] += grad * weight
            meta_loss = meta_loss + loss * weight
        return grads, {"meta_loss": meta_loss, "inner_step": runs[0].step}

    def _start(self, run: InnerRun, meta_params: Tensors, generator: torch.Generator | None = None,
               offset: int = 0) -> InnerRun:
        """A fresh run with nothing accumulated, carried to step `offset` by a window whose
        estimate is dropped (its perturbations stay accumulated, as PES's runs keep them)."""
        pairs = len(self._particles().mine)
        run.perturbations = {
            name: torch.zeros((pairs, *value.shape), dtype=value.dtype, device=value.device)
            for name, value in meta_params.items()}
        if offset:
            self._window(run, meta_params, generator, offset)
        return run

    def _window(self, run: InnerRun, meta_params: Tensors, generator: torch.Generator, stop: int):
        """Advance every particle to `stop`: the window's gradient estimate and the loss of
        the unperturbed run."""
        count, particles = self.particles, self._particles()
        with torch.no_grad():
            own_noise = particles.own(gaussian(meta_params, count, self.sigma, generator))
            candidates = particles.candidates(meta_params, own_noise)  # particles p+ and p− carry ±ξ_p
            if run.state is None:
                # The first state may depend on θ (MAML's initialisation does): perturbed too.
                run.state = Particlewise(run.problem).init(candidates)
            run.state, own = unroll_particles(run.problem, candidates, run.state, run.step, stop)
            run.step = stop
            run.perturbations = {name: value + own_noise[name] for name, value in run.perturbations.items()}
            losses = particles.all_losses(own)
            # PES: this window's losses times the perturbations accumulated so far.
            grads = particles.estimate(losses[:count] - losses[count:-1], run.perturbations,
                                       1.0 / (2 * count * self.sigma**2))
        return grads, losses[-1]

    def _particles(self) -> Particles:
        return Particles(distributed.current(), self.particles)

    def _layout(self, problem: Problem) -> tuple[Rows | None, Rows | None]:
        """A rank holds its particles' inner states (and θ's on rank 0) and their perturbations;
        one process, all of them."""
        particles = self._particles()
        if particles.world.size == 1:
            return None, None
        return particles.candidate_rows, particles.pair_rows

    def state_dict(self) -> dict:
        return self.runs.state_dict()

    def load_state_dict(self, state: dict, resample: Resample) -> None:
        self.runs.load_state_dict(state, resample)
