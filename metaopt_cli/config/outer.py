"""Schemas of `trainer/outer_optimizer` and `trainer/outer_scheduler`: torch's own classes,
built partially by Hydra's instantiate; the trainer passes θ and trainer.outer_lr (the
optimizer), then the optimizer (the schedule). A `_target_` given on the command line may name
another torch.optim (or torch.optim.lr_scheduler) class that takes the same arguments."""
from dataclasses import dataclass
from typing import List

from omegaconf import MISSING


@dataclass
class AdamConfig:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    betas: List[float] = MISSING
    eps: float = MISSING
    weight_decay: float = MISSING  # added to the gradient (L2), as Adam does


@dataclass
class AdamWConfig(AdamConfig):
    _target_: str = "torch.optim.AdamW"
    weight_decay: float = MISSING  # decoupled from the gradient (Loshchilov & Hutter 2019)


@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    momentum: float = MISSING
    nesterov: bool = MISSING
    weight_decay: float = MISSING


@dataclass
class ConstantConfig:
    # ConstantLR multiplies the lr by `factor` for the first `total_iters` steps: with factor 1,
    # the lr stays trainer.outer_lr throughout (and with less, a constant warm-up is one override away).
    _target_: str = "torch.optim.lr_scheduler.ConstantLR"
    _partial_: bool = True
    factor: float = MISSING
    total_iters: int = MISSING


@dataclass
class StepConfig:
    _target_: str = "torch.optim.lr_scheduler.StepLR"
    _partial_: bool = True
    step_size: int = MISSING  # meta-steps between two multiplications by gamma
    gamma: float = MISSING


@dataclass
class MultiStepConfig:
    _target_: str = "torch.optim.lr_scheduler.MultiStepLR"
    _partial_: bool = True
    # Meta-steps at which the lr is multiplied by gamma; a milestone listed twice multiplies by gamma²
    # (torch counts repeats), which spells drops of different sizes with one gamma.
    milestones: List[int] = MISSING
    gamma: float = MISSING


@dataclass
class CosineConfig:
    _target_: str = "torch.optim.lr_scheduler.CosineAnnealingLR"
    _partial_: bool = True
    T_max: int = MISSING  # meta-steps from trainer.outer_lr down to eta_min
    eta_min: float = MISSING
