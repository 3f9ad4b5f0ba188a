"""Which estimator serves which task, and why not where it does not."""
from collections.abc import Mapping

from omegaconf import DictConfig

from .build import build
from .errors import UserError

# (task, estimator) -> why the pair cannot work and what to use instead. Pairs not listed run.
UNSUPPORTED: dict[tuple[str, str], str] = {}


def why_unsupported(task: str, estimator: str) -> str | None:
    return UNSUPPORTED.get((task, estimator))


def check_run_config(cfg: DictConfig, choices: Mapping[str, str]) -> None:
    """Fail with a UserError on a configuration that cannot run, before any work is done."""
    reason = why_unsupported(choices["task"], choices["estimator"])
    if reason is not None:
        raise UserError(f"task={choices['task']} does not support estimator={choices['estimator']}: {reason}")
    estimator = build(cfg.estimator)  # estimators check their own values
    estimator.check_horizon(cfg.task.get("horizon"))
