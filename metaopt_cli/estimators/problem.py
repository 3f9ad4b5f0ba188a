"""The contract between tasks and estimators: one sampled inner problem."""
from typing import Protocol

import torch

Tensors = dict[str, torch.Tensor]


class Problem(Protocol):
    """An unrolled inner loop whose behaviour depends on the meta-parameters θ.

    State and θ are dicts of tensors so that the same code runs under torch.func.
    """

    horizon: int  # K: inner steps in one full unroll
    # Steps t (counted after the update, 1..K) whose meta-loss terms make up the objective;
    # the terms are averaged.
    objective_steps: range

    def init(self, meta_params: Tensors) -> Tensors:
        """The inner state before the first step."""

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        """One differentiable inner update, the (t+1)-th."""

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        """The meta-objective's term for the current state (a scalar)."""


# Optional, for estimator.stagger: `split() -> list[Problem]`, the problem's independent inner
# runs, one problem each, always apart (where `parts()` may keep them batched for speed), whose
# mean meta-loss is the problem's.


def parts(problem: Problem) -> list[Problem]:
    """A problem's independent pieces of equal weight, whose mean meta-loss is its own (the
    tasks of a meta-batch, where a task offers `parts()`), or the problem whole."""
    return problem.parts() if hasattr(problem, "parts") else [problem]
