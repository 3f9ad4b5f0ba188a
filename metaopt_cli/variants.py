"""Estimators by name, for the commands that put several side by side (gradcheck, bench).

A name is an `estimator` option (`tbptt`) or a variant: an option with a knob set, so that
two settings of one estimator can be compared in one run (`backprop_checkpoint`).
"""
from typing import Any

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from .build import build
from .config.store import options
from .compat import why_unsupported
from .errors import UserError

# variant -> (its estimator option, the knobs it sets)
VARIANTS = {
    "backprop_checkpoint": ("backprop", ["estimator.checkpoint=true"]),
}


def chosen_names(names, choices) -> list[str]:
    """gradcheck.estimators / bench.estimators; empty means the configured `estimator`."""
    return list(names) or [choices["estimator"]]


def option_of(name: str) -> str:
    return VARIANTS[name][0] if name in VARIANTS else name


def check_names(key: str, names: list[str]) -> None:
    known = sorted({*options("estimator"), *VARIANTS})
    for name in names:
        if name not in known:
            raise UserError(f"unknown estimator '{name}' in {key}: choose from {', '.join(known)}")


def compose_variant(name: str, *extra: str) -> DictConfig:
    """This command's config as its command line asks, with the estimator `name` and the
    `extra` overrides on top; called inside the running Hydra app.

    The command's own primary config is composed again, not `train`'s, so that every other
    override (gradcheck.*, bench.*, task.*, …) applies as it did at start-up. The command
    line's estimator.* knobs were checked there against its `estimator=` choice (tbptt unless
    given), so they go to that estimator only: `estimator.truncation=5` sets tbptt's
    truncation and is not tried on backprop. Other names run with the knobs of their YAML,
    and a variant's own knobs come last.
    """
    hydra_cfg = HydraConfig.get()
    option = option_of(name)
    keeps_knobs = option == hydra_cfg.runtime.choices["estimator"]
    parser = OverridesParser.create()
    overrides = []
    for line in hydra_cfg.overrides.task:
        key = parser.parse_override(line).key_or_group
        if key == "estimator" or (key.startswith("estimator.") and not keeps_knobs):
            continue
        overrides.append(line)
    knobs = VARIANTS[name][1] if name in VARIANTS else []
    return compose(config_name=hydra_cfg.job.config_name, overrides=[*overrides, f"estimator={option}", *knobs, *extra])


def usable_estimator(task: str, name: str, cfg: DictConfig, horizon: int) -> tuple[Any, str | None]:
    """The estimator `name` as `cfg` configures it, and None; or None and why it cannot run
    here: the task × estimator matrix, or a knob that does not fit the horizon (a truncation
    longer than K). The commands report such an estimator rather than stop."""
    reason = why_unsupported(task, option_of(name), cfg.task)
    if reason is not None:
        return None, reason
    estimator = build(cfg.estimator)
    try:
        estimator.check_horizon(horizon)
    except UserError as error:
        return None, str(error)
    return estimator, None
