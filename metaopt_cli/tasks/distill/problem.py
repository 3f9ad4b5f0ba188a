"""One inner problem of dataset distillation: train fresh networks on the synthetic set."""
from dataclasses import dataclass, replace

import torch
from torch import nn

from ...estimators.problem import Tensors
from ...functional import losses, sgd_step
from .synthetic import SyntheticSet


@dataclass
class DistillProblem:
    net: nn.Module
    synthetic: SyntheticSet
    init_params: Tensors  # a batch of fresh initialisations, stacked
    real_x: torch.Tensor  # the real training batch that scores the trained networks
    real_y: torch.Tensor
    horizon: int

    @property
    def objective_steps(self) -> range:
        return range(self.horizon, self.horizon + 1)  # the loss after the last step only

    @property
    def meta_batch(self) -> int:
        return len(next(iter(self.init_params.values())))

    def select(self, runs: range) -> "DistillProblem":
        """The networks `runs` alone, scored on the same real batch."""
        return replace(self, init_params={name: value[runs.start:runs.stop] for name, value in self.init_params.items()})

    def init(self, meta_params: Tensors) -> Tensors:
        return dict(self.init_params)

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        images, targets, lr = self.synthetic.unpack(meta_params)
        return sgd_step(self.net, state, images, targets, lr)

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        return losses(self.net, state, self.real_x, self.real_y).mean()
