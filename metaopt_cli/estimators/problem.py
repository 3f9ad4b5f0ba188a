"""The contract between tasks and estimators: one sampled inner problem."""
from typing import Protocol

import torch

from ..distributed import META_BATCH, Rows, World
from ..errors import UserError

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


# Optional, for estimator.stagger and for splitting a meta-batch across ranks: `meta_batch`, the
# number of independent inner runs the problem batches, whose mean meta-loss is its own, and
# `select(runs: range) -> Problem`, the problem of those runs alone (on the same scoring data).


def parts(problem: Problem) -> list[Problem]:
    """A problem's independent pieces of equal weight, whose mean meta-loss is its own (the
    tasks of a meta-batch, where a task offers `parts()`), or the problem whole."""
    return problem.parts() if hasattr(problem, "parts") else [problem]


def split(problem: Problem) -> list[Problem]:
    """The problem's inner runs one problem each, always apart (where `parts()` may keep them
    batched for speed)."""
    return [problem.select(range(run, run + 1)) for run in range(problem.meta_batch)]


def share(problem: Problem, world: World) -> Problem:
    """This rank's block of the problem's inner runs, noting `runs` (which rows of the whole's
    inner state it holds) and the whole's `draw`; the problem itself on one rank."""
    if world.size == 1:
        return problem
    if not hasattr(problem, "select"):
        raise UserError("this task's inner problem is a single run, which cannot be split across ranks: run it as one "
                        "process, or with estimator=es or pes, whose particles are split instead")
    runs = world.block(problem.meta_batch, META_BATCH)
    mine = problem.select(runs)
    mine.runs, mine.draw = Rows(list(runs), problem.meta_batch), getattr(problem, "draw", None)
    return mine
