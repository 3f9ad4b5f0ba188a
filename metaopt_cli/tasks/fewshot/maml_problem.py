"""One meta-batch of MAML: adapt the initialisation θ to each task's support set with K SGD
steps, all tasks at once under vmap (or one after another), and score the adapted networks on
the query sets."""
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ...data.episodes import Episodes
from ...estimators.problem import Tensors, split
from .losses import task_loss

LR_PREFIX = "inner_lr/"  # Meta-SGD's learned per-parameter learning rates, as log values


@dataclass
class MAMLProblem:
    net: nn.Module
    episodes: Episodes
    horizon: int
    inner_lr: float  # used where the learning rates are not learned
    adapted: tuple[str, ...]  # parameters the inner loop adapts (all of them, or ANIL's head)
    first_order: bool
    proximal: float  # iMAML's λ: the inner objective pulls the adapted weights towards θ
    # vmap: the tasks as one batch (fast on a GPU); loop: one after another, as the peers do,
    # which on a CPU avoids allocating meta-batch-times larger tensors.
    batching: str = "vmap"

    def parts(self) -> list["MAMLProblem"]:
        """Independent problems whose mean meta-loss is this one's: with loop batching, one per
        task, so that backprop holds one task's graph at a time, as the peers' loops do."""
        return [self] if self.batching == "vmap" else split(self)

    @property
    def meta_batch(self) -> int:
        return len(self.episodes.support_y)

    def select(self, runs: range) -> "MAMLProblem":
        """The tasks `runs` alone."""
        return replace(self, episodes=self.episodes.select(runs))

    @property
    def objective_steps(self) -> range:
        return range(self.horizon, self.horizon + 1)

    def init(self, meta_params: Tensors) -> Tensors:
        tasks = len(self.episodes.support_y)
        return {name: meta_params[name].expand(tasks, *meta_params[name].shape) for name in self.adapted}

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        grads = self._per_task(grad(self._support_objective), state, meta_params,
                               self.episodes.support_x, self.episodes.support_y)
        if self.first_order:  # FOMAML: the inner gradients count as constants
            grads = {name: value.detach() for name, value in grads.items()}
        return {name: value - self._lr(meta_params, name) * grads[name] for name, value in state.items()}

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        return self._per_task(self._query_loss, state, meta_params, self.episodes.query_x, self.episodes.query_y).mean()

    def inner_objective(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        """What the inner loop descends, summed over tasks (for the implicit estimator)."""
        return self._per_task(self._support_objective, state, meta_params,
                              self.episodes.support_x, self.episodes.support_y).sum()

    def _per_task(self, fn, state: Tensors, meta_params: Tensors, x, y):
        """fn(task's adapted weights, θ, task's x, task's y) for every task, stacked."""
        if self.batching == "vmap":
            return vmap(fn, in_dims=(0, None, 0, 0))(state, meta_params, x, y)
        outputs = [fn({name: value[b] for name, value in state.items()}, meta_params, x[b], y[b]) for b in range(len(x))]
        if isinstance(outputs[0], dict):
            return {name: torch.stack([output[name] for output in outputs]) for name in outputs[0]}
        return torch.stack(outputs)

    def _support_objective(self, adapted: Tensors, meta_params: Tensors, x, y) -> torch.Tensor:
        loss = task_loss(self.forward(adapted, meta_params, x), y)
        if self.proximal:
            loss = loss + 0.5 * self.proximal * sum(((adapted[n] - meta_params[n]) ** 2).sum() for n in adapted)
        return loss

    def _query_loss(self, adapted: Tensors, meta_params: Tensors, x, y) -> torch.Tensor:
        return task_loss(self.forward(adapted, meta_params, x), y)

    def forward(self, adapted: Tensors, meta_params: Tensors, x) -> torch.Tensor:
        params = {name: value for name, value in meta_params.items() if not name.startswith(LR_PREFIX)}
        return functional_call(self.net, {**params, **adapted}, (x,))

    def _lr(self, meta_params: Tensors, name: str):
        learned = meta_params.get(LR_PREFIX + name)
        return self.inner_lr if learned is None else learned.exp()
