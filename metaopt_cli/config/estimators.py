"""Schemas of the `estimator` group: one per meta-gradient estimator."""
from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class BackpropConfig:
    _target_: str = "metaopt_cli.estimators.backprop.Backprop"
    # Recompute the unroll in √K segments during the backward pass: O(√K) memory for one
    # extra forward pass.
    checkpoint: bool = MISSING


@dataclass
class TBPTTConfig:
    _target_: str = "metaopt_cli.estimators.tbptt.TBPTT"
    truncation: int = MISSING
    # RaT-BPTT (Feng et al. 2023): one window ending at a uniformly drawn step.
    random_window: bool = MISSING
