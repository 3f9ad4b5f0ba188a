"""Running part of an inner loop, shared by every estimator that unrolls."""
import torch

from .. import compiled
from .problem import Problem, Tensors


def unroll(problem: Problem, meta_params: Tensors, state: Tensors, start: int, stop: int):
    """Steps start..stop-1; returns the state after them and the objective terms they score
    (a problem with no inner loop, K = 0, scores its initial state: step 0). Steps and terms run
    compiled where trainer.compile asks (compiled.py)."""
    like = next(iter(meta_params.values()))
    loss = torch.zeros((), device=like.device, dtype=like.dtype)
    if start == 0 and 0 in problem.objective_steps:
        loss = loss + compiled.meta_loss(problem, meta_params, state) / len(problem.objective_steps)
    for t in range(start, stop):
        state = compiled.step(problem, meta_params, state, t)
        if t + 1 in problem.objective_steps:
            loss = loss + compiled.meta_loss(problem, meta_params, state) / len(problem.objective_steps)
    return state, loss


def total_loss(problem: Problem, meta_params: Tensors) -> torch.Tensor:
    """The meta-objective of one whole unroll, as a function of θ alone (for torch.func)."""
    return unroll(problem, meta_params, problem.init(meta_params), 0, problem.horizon)[1]


def scores_between(problem: Problem, start: int, stop: int) -> bool:
    """Whether any objective term falls in steps start+1..stop."""
    steps = problem.objective_steps
    return max(start + 1, steps.start) < min(stop + 1, steps.stop)


def leaves(meta_params: Tensors) -> Tensors:
    """Fresh graph leaves for θ, so an estimate never reaches into the caller's graph."""
    return {name: value.detach().requires_grad_() for name, value in meta_params.items()}


def detached(state: Tensors) -> Tensors:
    return {name: value.detach() for name, value in state.items()}


def gradient(loss: torch.Tensor, meta_params: Tensors) -> Tensors:
    """dloss/dθ, with zeros for meta-parameters the loss does not reach."""
    grads = torch.autograd.grad(loss, list(meta_params.values()), allow_unused=True)
    return {
        name: torch.zeros_like(value) if grad is None else grad
        for (name, value), grad in zip(meta_params.items(), grads)
    }
