"""Training the experts of trajectory matching (Cazenavette et al. 2022): networks trained on the
real training split with plain SGD (no momentum, no weight decay, as MTT's buffer), their
parameters kept at every epoch boundary. The experts train side by side under vmap, each on its
own initialisation and its own shuffle of the data."""
from collections.abc import Callable

import torch
from torch import nn
from torch.func import grad, vmap

from ...data.splits import SplitData
from ...functional import Params, loss_fn, sample_inits, split_scores
from ...progress import progress


def train_experts(make_net: Callable[[], nn.Module], data: SplitData, count: int, epochs: int, lr: float,
                  batch_size: int, generator: torch.Generator) -> tuple[dict[str, torch.Tensor], Params]:
    """Every expert's trajectory, name → [count, epochs + 1, *shape], and the final parameters
    (stacked over experts)."""
    train = data.train
    net = make_net().to(train.x.device)  # the architecture; its own weights are never used
    params = sample_inits(make_net, count, generator, train.x.device)
    step = vmap(grad(loss_fn(net)))  # each expert on its own minibatch
    history = {name: [value] for name, value in params.items()}
    size = len(train.y)
    for _ in progress(range(epochs), "experts: epochs"):
        # An epoch is one pass over the split in each expert's own order; the last minibatch
        # holds what is left over (the same count for every expert, so the step stays batched).
        order = torch.stack([torch.randperm(size, generator=generator, device=generator.device)
                             for _ in range(count)]).to(train.x.device)
        for start in range(0, size, batch_size):
            batch = order[:, start:start + batch_size]
            grads = step(params, train.x[batch], train.y[batch])
            params = {name: value - lr * grads[name] for name, value in params.items()}
        for name, value in params.items():
            history[name].append(value)
    return {name: torch.stack(values, dim=1) for name, values in history.items()}, params


def accuracies(make_net: Callable[[], nn.Module], params: Params, data: SplitData) -> dict[str, list[float]]:
    """Each expert's accuracy on the train and test splits."""
    net = make_net().to(data.train.x.device)
    with torch.no_grad():
        return {f"{split}_acc": split_scores(net, params, getattr(data, split).x, getattr(data, split).y)[1].tolist()
                for split in ("train", "test")}
