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
    online: bool = MISSING  # one window per meta-step, the inner run going on across them
    # Online: one inner run per problem of the meta-batch, run i of N starting at step
    # round(i·K/N), so that they do not all restart together at K.
    stagger: bool = MISSING


@dataclass
class ESConfig:
    _target_: str = "metaopt_cli.estimators.es.ES"
    particles: int = MISSING  # antithetic pairs
    sigma: float = MISSING  # std of the Gaussian perturbation of θ
    rank_shaping: bool = MISSING  # centered ranks instead of raw losses (a direction, not unbiased)


@dataclass
class PESConfig:
    _target_: str = "metaopt_cli.estimators.pes.PES"
    particles: int = MISSING
    sigma: float = MISSING
    truncation: int = MISSING
    online: bool = MISSING  # one window per meta-step, the particles' runs going on across them
    stagger: bool = MISSING  # online: the meta-batch's runs start at offsets spread over the horizon


@dataclass
class ImplicitConfig:
    _target_: str = "metaopt_cli.estimators.implicit.Implicit"
    solver: str = MISSING  # cg | neumann
    iterations: int = MISSING
    damping: float = MISSING  # λ in (H + λI)v = ∂L/∂w
    neumann_lr: float = MISSING  # α in v ← v + α(g − Hv)


@dataclass
class ForwardConfig:
    _target_: str = "metaopt_cli.estimators.forward.Forward"
    mode: str = MISSING  # exact | random
    directions: int = MISSING  # random tangents per estimate (mode=random)
    max_tangents: int = MISSING  # exact mode refuses more meta-parameters than this
    chunk: int = MISSING  # tangents pushed through the unroll at once
