"""Estimators against the exact meta-gradient: the exact reference, and how close draws come."""
import torch
from omegaconf import DictConfig

from .build import pick_device
from .config.commands import DType, Precision
from .errors import UserError
from .estimators.problem import Problem, Tensors
from .compat import check_data, check_trainer
from .precision import check_precision, supported
from .variants import check_names

# Names (as in gradcheck.estimators) of the estimators whose meta-gradient is exact.
REFERENCES = ("backprop", "backprop_checkpoint")


def check_gradcheck_config(cfg: DictConfig, choices) -> None:
    check_trainer(cfg.trainer)
    check_data(choices)
    options = cfg.gradcheck
    if options.samples < 1:
        raise UserError(f"gradcheck.samples must be at least 1, got {options.samples}")
    if options.reference not in REFERENCES:
        raise UserError(f"gradcheck.reference must be one of {', '.join(REFERENCES)}, got '{options.reference}'")
    check_names("gradcheck.estimators", options.estimators)
    compared_precisions(options.precisions, cfg.trainer, pick_device(cfg.trainer.device))


def compared_precisions(precisions, trainer: DictConfig, device: torch.device) -> list[Precision]:
    """gradcheck.precisions, each one the device runs with trainer.dtype; null: all of them
    (none in float64, which no lower precision serves)."""
    if precisions is None:
        return supported(device) if DType(trainer.dtype) is DType.float32 else []
    for kind in precisions:
        check_precision(kind, trainer.dtype, device, knob="gradcheck.precisions")
    return [Precision(kind) for kind in precisions]


def exact_gradient(reference, name: str, problem: Problem, meta_params: Tensors,
                   generator: torch.Generator) -> Tensors:
    """The meta-gradient by `reference` (gradcheck.reference=`name`), or a UserError with the
    fix if it does not fit in memory."""
    try:
        return reference.estimate(problem, meta_params, generator)[0]
    except RuntimeError as error:
        # torch.cuda.OutOfMemoryError is torch.OutOfMemoryError from torch 2.5 on; the CPU
        # allocator raises a plain RuntimeError.
        if not (isinstance(error, torch.cuda.OutOfMemoryError) or "can't allocate memory" in str(error)):
            raise
    fix = "lower task.horizon or trainer.meta_batch"
    if name != "backprop_checkpoint":
        fix = f"use gradcheck.reference=backprop_checkpoint (memory O(√K)), or {fix}"
    raise UserError(f"the exact reference ({name}) ran out of memory at task.horizon={problem.horizon}: {fix}")


class DrawStats:
    """Running statistics of an estimator's draws against the exact meta-gradient, all
    meta-parameters flattened together. Keeps a running mean (Welford's update), not every
    draw, so that θ of any size fits."""

    def __init__(self, exact: Tensors):
        self.names = list(exact)
        self.exact = self._flat(exact)
        self.count = 0
        self.mean = torch.zeros_like(self.exact)
        self.scatter = torch.zeros((), dtype=self.exact.dtype, device=self.exact.device)  # Σ‖draw − mean‖²
        self.cosine_sum = torch.zeros_like(self.scatter)

    def add(self, draw: Tensors) -> None:
        flat = self._flat(draw)
        self.count += 1
        self.cosine_sum += torch.nn.functional.cosine_similarity(flat, self.exact, dim=0)
        before = flat - self.mean
        self.mean += before / self.count
        self.scatter += before.dot(flat - self.mean)

    def summary(self) -> dict[str, float]:
        """cosine: mean cosine of a draw with the exact gradient; rel_error: the bias,
        ‖mean − exact‖ / ‖exact‖; variance: mean ‖draw − mean‖² (the covariance's trace)."""
        return {
            "cosine": float(self.cosine_sum / self.count),
            "rel_error": float((self.mean - self.exact).norm() / self.exact.norm()),
            "variance": float(self.scatter / self.count),
        }

    def _flat(self, grads: Tensors) -> torch.Tensor:
        # float64, so that sums over many draws stay accurate.
        return torch.cat([grads[name].detach().flatten().double() for name in self.names])
