"""One inner problem of architecture search: B supernets' weights w trained by minibatch SGD
with momentum and weight decay on the training split, every edge mixing its operations by
softmax(α); the meta-loss is their loss on a validation minibatch (DARTS's bilevel problem)."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from ...estimators.problem import Tensors
from ...functional import unprefixed
from ..runs import NetworkRuns

WEIGHTS, VELOCITY = "w/", "v/"  # state keys: the supernets' weights and their momentum buffers
# State key: each run's inner steps so far, which picks the validation minibatch that scores it. A
# float (it goes through torch.func and the estimators as the other state does); one per run, so
# that it is batched and split like the weights.
STEPS = "steps"


def arch_weights(meta_params: Tensors) -> tuple[torch.Tensor, ...]:
    """The per-edge operation weights of the normal (and reduction) cells: softmax over each
    edge's operations."""
    return tuple(torch.softmax(meta_params[f"alpha_{kind}"], dim=-1)
                 for kind in ("normal", "reduce") if f"alpha_{kind}" in meta_params)


def mixed_loss(net: nn.Module):
    """Cross-entropy of the supernet with weights `params` and operation weights `arch`."""

    def loss(params: Tensors, x: torch.Tensor, y: torch.Tensor, arch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return F.cross_entropy(functional_call(net, params, (x, *arch)), y)

    return loss


@dataclass
class NASProblem(NetworkRuns):
    net: nn.Module
    init_params: Tensors  # B fresh supernet initialisations, stacked
    train_x: torch.Tensor
    train_y: torch.Tensor
    batches: torch.Tensor  # int64 [K, B, batch]: each run's training minibatch at each step
    val_x: torch.Tensor  # the validation split
    val_y: torch.Tensor
    val_batches: torch.Tensor  # int64 [K, val_batch]: the validation minibatch scoring each step, as DARTS draws
    inner_x: torch.Tensor  # the training examples of the inner objective (implicit)
    inner_y: torch.Tensor
    lr: float
    momentum: float
    weight_decay: float
    first_order: bool  # DARTS's first-order variant: the inner steps see α as a constant

    @property
    def horizon(self) -> int:
        return self.batches.shape[0]

    @property
    def objective_steps(self) -> range:
        """Every step's validation loss counts: each α update of DARTS's alternating scheme (an
        online window) scores the weights just reached."""
        return range(1, self.horizon + 1)

    def init(self, meta_params: Tensors) -> Tensors:
        runs = self.batches.shape[1]
        return {**{WEIGHTS + name: value for name, value in self.init_params.items()},
                **{VELOCITY + name: torch.zeros_like(value) for name, value in self.init_params.items()},
                STEPS: torch.zeros(runs, device=self.batches.device)}

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        """v ← μ v + ∇L_train(w, α) + λ w;  w ← w − lr v (torch.optim.SGD's momentum, as DARTS's w)."""
        weights, velocity = unprefixed(state, WEIGHTS), unprefixed(state, VELOCITY)
        arch = arch_weights(meta_params)
        if self.first_order:  # ∂L_val/∂α at the weights reached, nothing through the steps
            arch = tuple(value.detach() for value in arch)
        batch = self.batches[t]
        grads = vmap(grad(mixed_loss(self.net)), in_dims=(0, 0, 0, None))(
            weights, self.train_x[batch], self.train_y[batch], arch)
        velocity = {name: self.momentum * velocity[name] + grads[name] + self.weight_decay * weights[name]
                    for name in weights}
        weights = {name: weights[name] - self.lr * velocity[name] for name in weights}
        return {**{WEIGHTS + n: v for n, v in weights.items()}, **{VELOCITY + n: v for n, v in velocity.items()},
                STEPS: state[STEPS] + 1}

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        """The validation loss on the minibatch of the step each run has reached (an online run
        meets a new one at every window, as DARTS's α steps do), averaged over runs."""
        chosen = self.val_batches[(state[STEPS].long() - 1).clamp(0, self.horizon - 1)]  # [B, val_batch]
        losses = vmap(mixed_loss(self.net), in_dims=(0, 0, 0, None))(
            unprefixed(state, WEIGHTS), self.val_x[chosen], self.val_y[chosen], arch_weights(meta_params))
        return losses.mean()

    def inner_objective(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        """The weight-decayed training loss the runs descend, summed over runs: iDARTS's inner
        objective, whose optimum w*(α) the implicit function theorem differentiates."""
        weights = unprefixed(state, WEIGHTS)
        losses = vmap(mixed_loss(self.net), in_dims=(0, None, None, None))(
            weights, self.inner_x, self.inner_y, arch_weights(meta_params))
        penalty = sum(0.5 * self.weight_decay * (value ** 2).sum() for value in weights.values())
        return losses.sum() + penalty
