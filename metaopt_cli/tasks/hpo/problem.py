"""One inner problem of hyperparameter optimisation: B training runs of a network by
minibatch SGD with momentum and weight decay, every step differentiable in the hyperparameters."""
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import grad, vmap

from ...estimators.problem import Tensors
from ...functional import loss_fn, losses, unprefixed
from ..runs import NetworkRuns
from .hyperparams import Hyperparams

OBJECTIVES = ("final", "sum")
WEIGHTS, VELOCITY = "w/", "v/"  # state keys: the networks' weights and their momentum buffers


@dataclass
class HPOProblem(NetworkRuns):
    net: nn.Module
    hyperparams: Hyperparams
    init_params: Tensors  # B fresh initialisations, stacked
    train_x: torch.Tensor
    train_y: torch.Tensor
    batches: torch.Tensor  # int64 [K, B, batch]: each run's minibatch at each step
    val_x: torch.Tensor  # what the meta-loss scores
    val_y: torch.Tensor
    objective: str  # final: the validation loss after K steps | sum: its mean over all K steps

    @property
    def horizon(self) -> int:
        return self.hyperparams.horizon

    @property
    def objective_steps(self) -> range:
        return range(self.horizon, self.horizon + 1) if self.objective == "final" else range(1, self.horizon + 1)

    def init(self, meta_params: Tensors) -> Tensors:
        weights = {WEIGHTS + name: value for name, value in self.init_params.items()}
        return {**weights, **{VELOCITY + name: torch.zeros_like(value) for name, value in self.init_params.items()}}

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        """v ← μ v + ∇L_batch(w) + λ w;  w ← w − lr_t v  (torch.optim.SGD's momentum)."""
        hp = self.hyperparams.complete(meta_params)
        weights, velocity = _split(state)
        grads = vmap(grad(loss_fn(self.net)))(weights, self.train_x[self.batches[t]], self.train_y[self.batches[t]])
        decays = self.hyperparams.weight_decays(hp, weights)
        momentum, lr = self.hyperparams.momentum_of(hp), self.hyperparams.lr_at(hp, t)
        velocity = {name: momentum * velocity[name] + grads[name] + decays[name] * weights[name] for name in weights}
        weights = {name: weights[name] - lr * velocity[name] for name in weights}
        return {**{WEIGHTS + n: v for n, v in weights.items()}, **{VELOCITY + n: v for n, v in velocity.items()}}

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        return losses(self.net, _split(state)[0], self.val_x, self.val_y).mean()

    def inner_objective(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        """The regularised training loss the runs descend, on the whole training split, summed
        over runs (for the implicit estimator, whose meta-parameter here is the weight decay)."""
        hp = self.hyperparams.complete(meta_params)
        weights = _split(state)[0]
        decays = self.hyperparams.weight_decays(hp, weights)
        penalty = sum(0.5 * decays[name] * (value ** 2).sum() for name, value in weights.items())
        return losses(self.net, weights, self.train_x, self.train_y).sum() + penalty


def _split(state: Tensors) -> tuple[Tensors, Tensors]:
    return unprefixed(state, WEIGHTS), unprefixed(state, VELOCITY)
