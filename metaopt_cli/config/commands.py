"""Schemas of the primary configs, one per command, and of the trainer and logger nodes."""
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, Optional

from omegaconf import MISSING


class DType(Enum):
    """The floating-point type of θ, the data and the inner state (names as in torch)."""

    float32 = "float32"
    float64 = "float64"  # for gradient checks, and the HPO papers that run in double


class Precision(Enum):
    """The arithmetic of a meta-gradient estimate (metaopt_cli/precision.py)."""

    fp32 = "fp32"
    tf32 = "tf32"  # float32 matmuls and convolutions on TF32 tensor cores (CUDA)
    bf16 = "bf16"  # the inner loop under bfloat16 autocast, the meta-gradient accumulated in float32


class Compile(Enum):
    """How a meta-step's estimate runs (metaopt_cli/compiled.py)."""

    none = "none"  # eagerly, op by op
    compile = "compile"  # the inner steps through torch.compile (inductor)
    cudagraph = "cudagraph"  # a whole meta-step captured as a CUDA graph: not available yet


@dataclass
class TrainerConfig:
    meta_steps: int = MISSING
    eval_every: int = MISSING  # 0: evaluate once, at the end
    checkpoint_every: int = MISSING
    log_every: int = MISSING
    seed: int = MISSING
    device: str = MISSING  # auto picks CUDA when present
    meta_batch: int = MISSING
    outer_lr: float = MISSING
    outer_optimizer: Any = MISSING  # the group trainer/outer_optimizer: config/outer.py
    outer_scheduler: Any = MISSING  # the group trainer/outer_scheduler: stepped once per meta-step
    progress: bool = MISSING
    dtype: DType = MISSING
    precision: Precision = MISSING
    compile: Compile = MISSING
    # The summary key `metaopt train` returns to a sweeper (metaopt_cli/objective.py); null: the task's default.
    objective: Optional[str] = MISSING


@dataclass
class WandbLoggerConfig:
    _target_: str = "metaopt_cli.tracking.wandb_tracker.WandbTracker"
    mode: str = MISSING  # auto | online | offline | disabled
    project: str = MISSING
    group: Optional[str] = MISSING  # null: the sweep, or task-estimator for a single run
    init_timeout: float = MISSING  # seconds to wait for the server; mode=auto then logs offline


@dataclass
class NoLoggerConfig:
    _target_: str = "metaopt_cli.tracking.null_tracker.NullTracker"


@dataclass
class TrainConfig:
    task: Any = MISSING
    estimator: Any = MISSING
    backbone: Any = MISSING
    data: Any = MISSING
    logger: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    resume: Optional[str] = None  # a run directory to continue


@dataclass
class EvalConfig(TrainConfig):
    # The run directory whose checkpoint is evaluated; the run's own config is used, with
    # this command's overrides on top.
    run: str = MISSING


@dataclass
class GradcheckOptions:
    # Names from `metaopt list` or a variant such as backprop_checkpoint; empty: the
    # configured `estimator`.
    estimators: List[str] = MISSING
    reference: str = MISSING  # the exact meta-gradient: backprop | backprop_checkpoint
    samples: int = MISSING  # estimates drawn per estimator
    # The reference's meta-gradient at each, against fp32's; null: all the device runs.
    precisions: Optional[List[Precision]] = MISSING


@dataclass
class GradcheckConfig(TrainConfig):
    gradcheck: GradcheckOptions = field(default_factory=GradcheckOptions)


@dataclass
class BenchOptions:
    estimators: List[str] = MISSING  # as gradcheck.estimators
    horizons: List[int] = MISSING  # the task.horizon values K measured
    repeats: int = MISSING  # timed estimates per cell, after one warm-up


@dataclass
class BenchConfig(TrainConfig):
    bench: BenchOptions = field(default_factory=BenchOptions)


@dataclass
class ExpertsOptions:
    count: int = MISSING  # networks trained
    epochs: int = MISSING  # epochs each, stored at every boundary
    lr: float = MISSING  # plain SGD's learning rate
    batch_size: int = MISSING
    dir: Optional[str] = MISSING  # null: outputs/experts/<data>-<backbone>


@dataclass
class ExpertsConfig(TrainConfig):
    experts: ExpertsOptions = field(default_factory=ExpertsOptions)


@dataclass
class ListConfig:
    pass
