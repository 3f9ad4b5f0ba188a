"""A meta-step whose meta-loss, meta-gradient or θ is not finite: the run stops with the knob
to lower, keeping as its checkpoint the run before the outer step that overshot."""
import copy
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import UserError
from .run_config import resume_command


class NonFinite(Exception):
    """The meta-loss or meta-gradient of a meta-step is not finite."""


def finite(tensors) -> bool:
    return all(torch.isfinite(value).all() for value in tensors)


def snapshot(state: dict) -> dict:
    """A checkpoint's state kept in memory through the next outer step, which changes θ and the
    optimizer's and schedule's states in place (the estimator's state is replaced, not changed)."""
    return {**state, "meta_params": {name: value.clone() for name, value in state["meta_params"].items()},
            "optimizer": copy.deepcopy(state["optimizer"]), "scheduler": copy.deepcopy(state["scheduler"])}


def diverged(what: str, step: int, good: dict | None, task, optimizer, trainer, run_dir: Path,
             save: Callable[[dict], None]) -> UserError:
    """Stop a run that turned non-finite at meta-step step+1. `good` is the run before the
    outer step that overshot; it becomes the checkpoint, so that resuming with a smaller step
    redoes that step (`save` writes it). Before any outer step, the inner loop diverges at θ's
    initialisation."""
    head = f"{what} became non-finite at meta-step {step + 1}"
    if good is None and step == 0:
        knob = getattr(task, "inner_step_knob", None)
        fix = f"lower {knob}" if knob else "change how θ is initialised (the task.* settings)"
        return UserError(f"{head}, before any outer step: the inner loop diverges at θ's initialisation: {fix} "
                         f"and start the run again")
    knob = _step_size_knob(optimizer, trainer)
    if good is None:  # this process resumed at `step`: the θ that diverges is the checkpoint's own
        return UserError(f"{head}, the first step after resuming: the checkpoint of meta-step {step} already holds the "
                         f"θ that diverges, so resuming cannot step back: start the run again with a lower {knob}")
    save(good)
    inner = getattr(task, "inner_step_knob", None)
    # A meta-loss already huge before this step (metrics.jsonl) means the inner loop itself diverges.
    otherwise = f"; if the meta-loss was already large, lower {inner} instead and start again" if inner else ""
    return UserError(f"{head}; the run directory keeps the checkpoint of meta-step {good['step']}, before the outer "
                     f"step that overshot: lower {knob} and resume with "
                     f"`{resume_command(run_dir)} {knob.split()[0]}=<smaller>`{otherwise}")


def _step_size_knob(optimizer, trainer) -> str:
    """The setting that sizes the outer step now: the outer lr, unless the optimizer says which."""
    return getattr(optimizer, "step_size_knob", None) or f"trainer.outer_lr (now {trainer.outer_lr})"
