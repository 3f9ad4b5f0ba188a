"""One inner problem of learned-optimizer meta-training: B networks trained by the learned rule
on minibatches for K steps; the meta-loss is their loss on a fixed batch, averaged over the run."""
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import grad, vmap

from ...estimators.problem import Tensors
from ...functional import loss_fn, losses, unprefixed
from ..runs import NetworkRuns
from .rule import MLPRule, LSTMRule

WEIGHTS = "w/"


@dataclass
class LOptProblem(NetworkRuns):
    net: nn.Module
    init_params: Tensors  # B fresh initialisations, stacked
    train_x: torch.Tensor
    train_y: torch.Tensor
    batches: torch.Tensor  # int64 [K, B, batch]: each run's minibatch at each step
    scored_x: torch.Tensor  # the batch the meta-loss scores (training or validation examples)
    scored_y: torch.Tensor
    horizon: int
    rule: MLPRule | LSTMRule

    @property
    def objective_steps(self) -> range:
        return range(1, self.horizon + 1)  # the loss along the whole trajectory

    def init(self, meta_params: Tensors) -> Tensors:
        state = {WEIGHTS + name: value for name, value in self.init_params.items()}
        for name, value in self.init_params.items():
            state.update({_slot(k, name): m for k, m in enumerate(self.rule.init_state(value))})
        return state

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        weights = _weights(state)
        grads = vmap(grad(loss_fn(self.net)))(weights, self.train_x[self.batches[t]], self.train_y[self.batches[t]])

        def apply(param, g, slots):
            return self.rule.update(meta_params, param, g, slots, t)

        new_state = {}
        for name, value in weights.items():
            slots = [state[_slot(k, name)] for k in range(self.rule.slots)]
            new_value, new_slots = vmap(apply)(value, grads[name], slots)
            new_state[WEIGHTS + name] = new_value
            new_state.update({_slot(k, name): m for k, m in enumerate(new_slots)})
        return new_state

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        return losses(self.net, _weights(state), self.scored_x, self.scored_y).mean()


def _slot(k: int, name: str) -> str:
    """The state key of the rule's k-th per-parameter slot (a momentum, an LSTM's h or c)."""
    return f"s{k}/{name}"


def _weights(state: Tensors) -> Tensors:
    return unprefixed(state, WEIGHTS)
