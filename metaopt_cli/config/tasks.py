"""Schemas of the `task` group."""
from dataclasses import dataclass
from typing import List

from omegaconf import MISSING


@dataclass
class DistillConfig:
    _target_: str = "metaopt_cli.tasks.distill.task.Distill"
    horizon: int = MISSING  # K: inner SGD steps on the synthetic set
    images_per_class: int = MISSING
    learn_labels: bool = MISSING  # soft labels as extra meta-parameters
    learn_lr: bool = MISSING  # the inner learning rate as a meta-parameter
    inner_lr: float = MISSING  # initial inner learning rate
    init: str = MISSING  # synthetic images start as random real images, or as noise
    real_batch: int = MISSING  # real training images scoring each meta-step
    eval_models: int = MISSING  # fresh networks trained on the distilled set at evaluation
    eval_steps: int = MISSING  # full-batch steps for the random-real baseline
    # The random-real baseline's learning-rate grid, the best picked on validation.
    eval_lrs: List[float] = MISSING


@dataclass
class InfluenceConfig:
    _target_: str = "metaopt_cli.tasks.influence.InfluenceBalancing"
    horizon: int = MISSING  # steps before the system restarts from s = 0
    dim: int = MISSING  # length of the state s
    positive: int = MISSING  # leading entries of b that are +1; the rest are −1
    init_theta: float = MISSING
