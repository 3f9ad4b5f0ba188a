"""trainer.objective: the summary figure `metaopt train` returns to Hydra, which a sweeper
(Optuna, Nevergrad, Ax) optimises over a sweep's runs. null names the task's default objective."""
import math
from typing import Any, Mapping

from omegaconf import DictConfig

from .compat import data_kind, task_class
from .errors import UserError
from .tasks.protocol import Objective, declared, for_data


def objective_of(cfg: DictConfig, choices: Mapping[str, str]) -> Objective:
    """The run's objective; its direction is known for the task's default only (None otherwise)."""
    task = task_class(choices["task"])
    kind = data_kind(choices["data"]) if declared(task, "data_kinds") else None
    default = for_data(declared(task, "default_objective"), kind)
    key = cfg.trainer.objective
    if key is None or key == default.key:
        return default
    reported = for_data(declared(task, "reported_metrics"), kind)
    if key not in reported:
        raise UserError(f"trainer.objective={key}: task={choices['task']} reports no such figure; choose one of "
                        f"{', '.join(reported)} (null: its default, {default.key})")
    return Objective(key, None)


def check_sweeper_direction(objective: Objective, sweeper: DictConfig) -> None:
    """An Optuna sweep that maximises a loss would pick the worst run; refused where both are known."""
    wanted = sweeper.get("direction") if "direction" in sweeper else None
    wanted = getattr(wanted, "name", wanted)  # the sweeper's schema holds an Enum
    if objective.direction is not None and isinstance(wanted, str) and wanted != objective.direction:
        raise UserError(f"hydra.sweeper.direction={wanted}, but trainer.objective={objective.key} is to "
                        f"{objective.direction}: pass hydra.sweeper.direction={objective.direction}")


def objective_value(summary: Mapping[str, Any], key: str) -> float:
    """The figure a sweeper ranks the run by: NaN where the run's figure is missing or not finite
    (metaopt_cli/sweep.py turns that into a failed trial)."""
    value = summary.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan
