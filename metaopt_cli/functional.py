"""Networks as functions of their parameters: sampling initialisations and SGD steps that
run under torch.func (vmap over networks, grad inside an outer autograd graph)."""
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

Params = dict[str, torch.Tensor]
EVAL_CHUNK = 1024  # examples per forward pass when scoring a whole split


def sample_inits(make_net: Callable[[], nn.Module], count: int, generator: torch.Generator, device) -> Params:
    """`count` fresh initialisations, stacked on a leading axis, drawn from `generator`.

    Modules initialise from torch's global RNG; forking it keeps the draw reproducible from
    the run's own generator without disturbing anything else.
    """
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        params, _ = stack_module_state([make_net() for _ in range(count)])
    return {name: value.detach().to(device) for name, value in params.items()}


def unprefixed(state: Params, prefix: str) -> Params:
    """The entries of an inner state whose keys start with `prefix` ("w/": a training run's
    weights), keyed without it."""
    return {name[len(prefix):]: value for name, value in state.items() if name.startswith(prefix)}


def minibatches(size: int, steps: int, runs: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """int64 [steps, runs, batch]: each training run's minibatch of a split of `size` examples at
    every step, drawn with replacement; the whole split, in order, when batch_size covers it."""
    if batch_size >= size:  # full-batch gradient descent
        return torch.arange(size, device=generator.device).expand(steps, runs, -1)
    return torch.randint(size, (steps, runs, batch_size), generator=generator, device=generator.device)


def loss_fn(net: nn.Module) -> Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy against class indices or soft labels (rows of probabilities)."""

    def loss(params: Params, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(net, params, (x,)), targets)

    return loss


def sgd_step(net: nn.Module, params: Params, x, targets, lr, data_dim: int | None = None) -> Params:
    """One full-batch SGD step of every network on a stacked axis; differentiable in x,
    targets and lr. data_dim=0: network i trains on x[i] instead of a shared x."""
    grads = vmap(grad(loss_fn(net)), in_dims=(0, data_dim, None))(params, x, targets)
    return {name: value - lr * grads[name] for name, value in params.items()}


def losses(net: nn.Module, params: Params, x, targets) -> torch.Tensor:
    """The loss of every network on a stacked axis: a vector."""
    return vmap(loss_fn(net), in_dims=(0, None, None))(params, x, targets)


def split_scores(net: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each network's mean cross-entropy and accuracy on a whole split (vectors over the
    stacked axis), a chunk at a time so that large test sets fit in memory."""
    loss_sum, correct = 0.0, 0.0
    for i in range(0, len(y), EVAL_CHUNK):
        logits = vmap(functional_call, in_dims=(None, 0, None))(net, params, (x[i:i + EVAL_CHUNK],))
        targets = y[i:i + EVAL_CHUNK].expand(len(logits), -1)
        loss_sum = loss_sum + F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view_as(targets).sum(-1)
        correct = correct + (logits.argmax(-1) == targets).float().sum(-1)
    return loss_sum / len(y), correct / len(y)
