"""ES's and PES's particles as one problem: each candidate θ runs the same inner problem, all of
them at once."""
from dataclasses import dataclass

import torch
from torch.func import vmap

from .problem import Problem, Tensors
from .unroll import unroll


@dataclass
class Particlewise:
    """`each` run for a batch of candidate θs, stacked on a leading axis of θ and of the inner
    state. Unrolling it is the vmap of `each`'s unroll taken step by step, with the same batched
    ops: the form in which trainer.compile=compile can compile the steps, since a compiled function
    cannot be entered from inside a vmap (pytorch/pytorch#128711), while a vmap inside one is compiled."""

    each: Problem

    @property
    def horizon(self) -> int:
        return self.each.horizon

    @property
    def objective_steps(self) -> range:
        return self.each.objective_steps

    def init(self, meta_params: Tensors) -> Tensors:
        return vmap(self.each.init)(meta_params)

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        return vmap(lambda candidate, inner: self.each.step(candidate, inner, t))(meta_params, state)

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        return vmap(self.each.meta_loss)(meta_params, state)


def unroll_particles(problem: Problem, candidates: Tensors, states: Tensors, start: int, stop: int):
    """unroll for every candidate θ at once: their states after steps start..stop-1, and the
    objective terms each scored there (zeros for a window that scores nothing)."""
    states, losses = unroll(Particlewise(problem), candidates, states, start, stop)
    count = len(next(iter(candidates.values())))
    return states, losses.expand(count).clone()  # a window scoring nothing leaves unroll's scalar zero


def particle_losses(problem: Problem, candidates: Tensors) -> torch.Tensor:
    """The meta-objective of one whole unroll for every candidate θ."""
    return unroll_particles(problem, candidates, Particlewise(problem).init(candidates), 0, problem.horizon)[1]
