"""Which estimator and which data serve which task, and why not where they do not: derived
from what the parts declare (tasks/protocol.py, estimators/protocol.py, config/data.py)."""
import math
from collections.abc import Mapping

from hydra.utils import get_class
from omegaconf import DictConfig

from . import distributed
from .build import build, pick_device
from .compiled import check_compile
from .config.commands import Compile
from .config.data import DATA_KINDS
from .config.store import options, schema_of
from .errors import UserError
from .estimators.protocol import needs
from .estimators.ranks import check_ranks
from .outer import check_outer
from .precision import check_precision
from .tasks.protocol import CAPABILITIES, OnlyWith, declared, lacks


def task_class(task: str) -> type:
    return get_class(schema_of("task", task)._target_)


def estimator_class(estimator: str) -> type:
    return get_class(schema_of("estimator", estimator)._target_)


def data_kind(data: str) -> str:
    return schema_of("data", data).kind


def lacking(task: str, estimator: str) -> str | OnlyWith | None:
    """What the task lacks that the estimator needs (the task's reason), or None."""
    return missing(task_class(task), estimator_class(estimator))


def missing(task: type, estimator: type) -> str | OnlyWith | None:
    """The first capability, most specific first, that the estimator class needs and the task
    class lacks: the task's reason; None where it has them all."""
    reasons = (lacks(task, capability) for capability in CAPABILITIES if needs(estimator, capability))
    return next((reason for reason in reasons if reason is not None), None)


def condition(task: str, estimator: str) -> str | None:
    """The settings under which alone the pair runs (`metaopt list`'s ~), or None."""
    reason = lacking(task, estimator)
    return f"only with {reason.setting}" if isinstance(reason, OnlyWith) else None


def why_unsupported(task: str, estimator: str, task_cfg: DictConfig | None = None) -> str | None:
    """Why the pair cannot run and what to use instead; with the task's config, also where
    only some settings can."""
    reason = lacking(task, estimator)
    if isinstance(reason, OnlyWith):
        reason = reason.why_not(task_cfg) if task_cfg is not None else None
        return f"{reason}, or use {serving(task)}" if reason else None
    return f"{reason}: use {serving(task)}" if reason else None


def serving(task: str) -> str:
    """The estimators that serve the task whatever its settings, as a phrase."""
    return one_of([name for name in options("estimator") if lacking(task, name) is None])


def one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def why_unsupported_data(task: str, data: str) -> str | None:
    """Why the task cannot learn from the data and which to use instead, or None (a task
    that takes no data ignores whichever is chosen)."""
    kinds = declared(task_class(task), "data_kinds")
    if not kinds or data_kind(data) in kinds:
        return None
    usable = one_of([name for name in options("data") if data_kind(name) in kinds])
    return (f"{task} learns from {one_of(list(kinds))} data, and {data} is "
            f"{data_kind(data)} data ({DATA_KINDS[data_kind(data)]}): use data={usable}")


def check_run_config(cfg: DictConfig, choices: Mapping[str, str]) -> None:
    """Fail with a UserError on a configuration that cannot run, before any work is done."""
    task, estimator = choices["task"], choices["estimator"]
    reason = why_unsupported(task, estimator, cfg.task)
    if reason is not None:
        raise UserError(f"task={task} does not support estimator={estimator}: {reason}")
    if hasattr(task_class(task), "check_estimator"):  # settings of the task that only some estimators carry out
        task_class(task).check_estimator(cfg.task, cfg.estimator)
    check_data(choices)
    horizon = cfg.task.get("horizon")
    if horizon is not None and horizon < 1:  # before the estimator measures its windows against it
        raise UserError(f"task.horizon counts inner steps and must be at least 1, got {horizon}")
    estimator = build(cfg.estimator)  # estimators check their own values
    estimator.check_horizon(horizon)
    check_trainer(cfg.trainer)
    check_ranks(type(estimator), cfg.estimator, cfg.trainer.meta_batch, distributed.current())


def check_data(choices: Mapping[str, str]) -> None:
    """Fail with a UserError where the chosen task cannot learn from the chosen data."""
    reason = why_unsupported_data(choices["task"], choices["data"])
    if reason is not None:
        raise UserError(f"task={choices['task']} does not support data={choices['data']}: {reason}")


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
    # A device this torch or machine cannot use fails before any run starts, and so a precision or
    # compile mode it lacks.
    device = pick_device(trainer.device, distributed.current())
    check_precision(trainer.precision, trainer.dtype, device)
    check_compile(Compile(trainer.compile), device)
    check_outer(trainer)
