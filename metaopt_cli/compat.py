"""Which estimator serves which task, and why not where it does not."""
import math
from collections.abc import Callable, Mapping

import torch
from omegaconf import DictConfig

from .build import build, pick_device
from .errors import UserError

OUTER_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}

# (task, estimator) -> why the pair cannot work and what to use instead. Pairs not listed run.
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("distill", "implicit"): (
        "distillation trains each fresh network for a fixed K steps and stops far from any inner optimum, "
        "so the implicit function theorem does not apply: use backprop, tbptt, pes, es or forward"
    ),
    ("protonet", "tbptt"): "Prototypical Networks have no inner loop to truncate: use backprop (or es, forward)",
    ("protonet", "pes"): "Prototypical Networks have no inner loop to truncate: use backprop (or es, forward)",
    ("protonet", "implicit"): "Prototypical Networks have no inner loop, so no inner optimum: use backprop",
    ("learned_opt", "implicit"): (
        "a learned optimizer is judged along its whole training run, not at an inner optimum, so the implicit "
        "function theorem does not apply: use pes, tbptt, es or backprop"
    ),
    ("influence", "implicit"): (
        "the linear system is not an optimisation, so it has no inner objective for the implicit "
        "function theorem: use pes, es, forward or backprop"
    ),
}


def _implicit_hpo(task_cfg: DictConfig) -> str | None:
    others = [name for name in task_cfg.hyperparams if name != "weight_decay"]
    if not others:
        return None
    return (f"implicit differentiation sees only hyperparameters of the inner objective (weight_decay), not "
            f"{', '.join(others)}, which act on the optimiser's path: set task.hyperparams=[weight_decay], or use "
            "backprop, tbptt, pes or forward")


# (task, estimator) -> (where the pair runs, a rule giving why it cannot with a task config or None).
UNSUPPORTED_IF: dict[tuple[str, str], tuple[str, Callable[[DictConfig], str | None]]] = {
    ("hpo", "implicit"): ("only with task.hyperparams=[weight_decay]", _implicit_hpo),
}


def why_unsupported(task: str, estimator: str, task_cfg: DictConfig | None = None) -> str | None:
    """Why the pair cannot run; with the task's config, also where only some settings can."""
    if task_cfg is not None and (task, estimator) in UNSUPPORTED_IF:
        return UNSUPPORTED_IF[task, estimator][1](task_cfg)
    return UNSUPPORTED.get((task, estimator))


def check_run_config(cfg: DictConfig, choices: Mapping[str, str]) -> None:
    """Fail with a UserError on a configuration that cannot run, before any work is done."""
    reason = why_unsupported(choices["task"], choices["estimator"], cfg.task)
    if reason is not None:
        raise UserError(f"task={choices['task']} does not support estimator={choices['estimator']}: {reason}")
    horizon = cfg.task.get("horizon")
    if horizon is not None and horizon < 1:  # before the estimator measures its windows against it
        raise UserError(f"task.horizon counts inner steps and must be at least 1, got {horizon}")
    estimator = build(cfg.estimator)  # estimators check their own values
    estimator.check_horizon(horizon)
    check_trainer(cfg.trainer)


def check_trainer(trainer: DictConfig) -> None:
    for key in ("meta_steps", "meta_batch", "checkpoint_every", "log_every"):
        if trainer[key] < 1:
            raise UserError(f"trainer.{key} must be at least 1, got {trainer[key]}")
    if trainer.eval_every < 0:
        raise UserError(f"trainer.eval_every must be 0 (only at the end) or positive, got {trainer.eval_every}")
    if not 0 < trainer.outer_lr < math.inf:
        raise UserError(f"trainer.outer_lr must be positive and finite, got {trainer.outer_lr}")
    # The seed and those derived from it (seed + 1 for evaluation) must fit torch's unsigned 64 bits;
    # a negative seed would silently alias a positive one.
    if not 0 <= trainer.seed < 2**63:
        raise UserError(f"trainer.seed must be between 0 and 2**63 - 1, got {trainer.seed}")
    pick_device(trainer.device)  # a device this torch or machine cannot use fails before any run starts
    if trainer.outer_optimizer not in OUTER_OPTIMIZERS:
        raise UserError(f"trainer.outer_optimizer must be one of {', '.join(OUTER_OPTIMIZERS)}, got '{trainer.outer_optimizer}'")
