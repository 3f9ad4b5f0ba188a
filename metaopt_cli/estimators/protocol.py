"""The contract every estimator keeps: what the trainer calls on it, and what it needs of a
task (tasks/protocol.py CAPABILITIES), from which the task × estimator matrix derives.

An estimator does not subclass `Estimator`; it declares the `needs_*` it has at the top of its
class body, and one it leaves out takes the default given here (`needs`).
"""
from typing import ClassVar, Protocol

import torch

from .problem import Problem, Tensors


class Estimator(Protocol):
    """Computes (an estimate of) dL/dθ for one sampled Problem, knowing nothing about which
    task it serves."""

    needs_inner_loop: ClassVar[bool] = False  # it unrolls inner steps window by window
    needs_inner_objective: ClassVar[bool] = False  # it differentiates the inner objective
    needs_inner_optimum: ClassVar[bool] = False  # its gradient is exact only at that objective's optimum
    needs_forward_mode: ClassVar[bool] = False  # it pushes tangents through the unroll (torch.func.jvp)
    # Across ranks, it splits its particles itself and returns the estimate summed over ranks;
    # otherwise each rank estimates on its block of the meta-batch (estimators/ranks.py).
    splits_particles: ClassVar[bool] = False

    def estimate(self, problem: Problem, meta_params: Tensors,
                 generator: torch.Generator) -> tuple[Tensors, dict]:
        """Gradients shaped like θ and metrics (`meta_loss` among them); all randomness from
        `generator`."""

    def check_horizon(self, horizon: int | None) -> None:
        """Raise a UserError where the estimator's knobs do not fit K (None: no inner loop)."""

    # Optional methods; where an estimator lacks one the trainer does what is said:
    #   check_meta_params(meta_params): refuse a θ it cannot serve, before any work (without it:
    #       any θ);
    #   state_dict() -> dict and load_state_dict(state, resample): an online estimator's inner
    #       runs in progress, tensors and plain numbers only, checkpointed with θ (without them:
    #       nothing carries over from one meta-step to the next). Across ranks, a rank's rows of
    #       what the ranks split are marked `distributed.Sharded` and the checkpoint holds them
    #       assembled whole, so that any number of ranks loads it.


def needs(estimator: type, capability: str) -> bool:
    """Whether an estimator class needs the capability of its tasks."""
    return declares(estimator, f"needs_{capability}")


def declares(estimator: type, name: str) -> bool:
    """An estimator class's declaration `name`, or the protocol's default where it has none."""
    return getattr(estimator, name) if hasattr(estimator, name) else getattr(Estimator, name)
