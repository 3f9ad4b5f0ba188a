"""Backpropagation through the whole unroll: the exact meta-gradient."""
import math

import torch

from .problem import Problem, Tensors, parts
from .unroll import detached, gradient, leaves, unroll


class Backprop:
    def __init__(self, checkpoint: bool):
        self.checkpoint = checkpoint

    def check_horizon(self, horizon: int | None) -> None:
        """Any horizon works; memory grows with it."""

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        """The mean of the parts' exact meta-gradients: the parts are backpropagated one at a
        time, so memory holds one part's graph, not the whole meta-batch's."""
        meta_params = leaves(meta_params)
        pieces = parts(problem)
        grads = {name: torch.zeros_like(value) for name, value in meta_params.items()}
        meta_loss = 0.0
        for piece in pieces:
            piece_grads, loss = self._estimate_one(piece, meta_params)
            for name, grad in piece_grads.items():
                grads[name] += grad / len(pieces)
            meta_loss = meta_loss + loss.detach() / len(pieces)
        return grads, {"meta_loss": meta_loss}

    def _estimate_one(self, problem: Problem, meta_params: Tensors):
        if self.checkpoint:
            return _checkpointed_estimate(problem, meta_params)
        _, loss = unroll(problem, meta_params, problem.init(meta_params), 0, problem.horizon)
        return gradient(loss, meta_params), loss


def _checkpointed_estimate(problem: Problem, meta_params: Tensors):
    """Backprop that keeps only the states at segment boundaries (√K segments of √K steps)
    and recomputes each segment's graph during the backward pass: O(√K) memory for one more
    forward pass. Written out by hand because torch.utils.checkpoint's saved-tensor hooks do
    not compose with torch.func.grad inside the inner step."""
    horizon = problem.horizon
    size = max(1, math.isqrt(horizon))
    # K = 0 (no inner loop) is one empty segment that scores the initial state.
    segments = [(start, min(start + size, horizon)) for start in range(0, horizon, size)] or [(0, 0)]
    init_state = problem.init(meta_params)
    boundary_states, meta_loss = [], 0.0
    with torch.no_grad():
        state = detached(init_state)
        for start, stop in segments:
            boundary_states.append(state)
            state, loss = unroll(problem, meta_params, state, start, stop)
            meta_loss = meta_loss + loss
    grads = {name: torch.zeros_like(value) for name, value in meta_params.items()}
    state_grads = None  # d(objective)/d(state at the current segment's end)
    for (start, stop), state in zip(reversed(segments), reversed(boundary_states)):
        state = {name: value.requires_grad_() for name, value in state.items()}
        end_state, loss = unroll(problem, meta_params, state, start, stop)
        outputs, output_grads = [], []
        if loss.requires_grad:  # segments before the first objective term score nothing
            outputs, output_grads = [loss], [torch.ones_like(loss)]
        if state_grads is not None:
            outputs += list(end_state.values())
            output_grads += [state_grads[name] for name in end_state]
        wrt = [*meta_params.values(), *state.values()]
        results = torch.autograd.grad(outputs, wrt, output_grads, allow_unused=True)
        for name, grad in zip(meta_params, results):
            if grad is not None:
                grads[name] += grad
        state_grads = {name: _zero_if_none(grad, state[name]) for name, grad in zip(state, results[len(meta_params):])}
    # The first state may itself depend on θ (MAML's initialisation does).
    for name, grad in _through_init(init_state, state_grads, meta_params).items():
        grads[name] += grad
    return grads, meta_loss


def _through_init(init_state: Tensors, state_grads: Tensors, meta_params: Tensors) -> Tensors:
    reached = [name for name, value in init_state.items() if value.requires_grad]
    if not reached:
        return {}
    results = torch.autograd.grad(
        [init_state[name] for name in reached], list(meta_params.values()),
        [state_grads[name] for name in reached], allow_unused=True,
    )
    return {name: grad for name, grad in zip(meta_params, results) if grad is not None}


def _zero_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad
