"""The contract every task keeps: what the trainer calls on it, and what it declares about
itself so that the task × estimator and task × data matrices (compat.py) derive from it.

A task does not subclass `Task`; it declares the class attributes below at the top of its
class body, and one it leaves out takes the default given here (`declared`).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from ..estimators.problem import Problem, Tensors


@dataclass(frozen=True)
class OnlyWith:
    """A capability a task has only where the setting `task.<knob>` keeps to `values`: a list
    setting all of whose entries are among them, or a single choice that is one of them.
    `reason` says why not otherwise; `{others}` in it stands for the values outside them."""

    knob: str
    values: tuple[str, ...]
    reason: str
    single: bool = False  # the knob is one choice (an Enum), not a list

    @property
    def setting(self) -> str:
        if self.single:
            return f"task.{self.knob}={' or '.join(self.values)}"
        return f"task.{self.knob}=[{','.join(self.values)}]"

    def why_not(self, task_cfg: Any) -> str | None:
        """Why these settings lack the capability, with the fix; None where they have it."""
        chosen = [task_cfg[self.knob]] if self.single else task_cfg[self.knob]
        # A schema's Enum field composes to its member; the values name members by value.
        others = [getattr(value, "value", value) for value in chosen if getattr(value, "value", value) not in self.values]
        return f"{self.reason.format(others=', '.join(others))}: set {self.setting}" if others else None


@dataclass(frozen=True)
class Objective:
    """A summary key that a sweeper optimises (trainer.objective), and which way."""

    key: str
    direction: str  # minimize | maximize, as Optuna's sweeper spells hydra.sweeper.direction


# What a task reports may depend on the kind of data it learns from (accuracy on classes, squared
# error on a regression): a declaration below may then be a dict from data kind to its value.
PerKind = dict[str, Any]


# What an estimator may need of a task (its `needs_<capability>`, estimators/protocol.py), most
# specific first, each with the capability it presupposes: a task without an inner loop has no
# inner objective, and one without an inner objective no inner optimum.
CAPABILITIES: dict[str, str | None] = {
    "inner_optimum": "inner_objective",  # the unroll ends at (near) an optimum of the inner objective
    "inner_objective": "inner_loop",  # the inner steps descend an objective of θ (Problem.inner_objective)
    "inner_loop": None,  # there are inner steps to unroll and truncate (K ≥ 1)
    "forward_mode": None,  # every op of the unroll has a forward-mode (jvp) rule
}


class Task(Protocol):
    """Owns θ: initialises it, samples inner problems that depend on it, and scores it."""

    # The `estimator` that `metaopt train task=<this>` runs with; the task's YAML selects the same.
    default_estimator: ClassVar[str]
    # The kinds of `data` it takes (config/data.py DATA_KINDS); () takes none, whatever is chosen.
    data_kinds: ClassVar[tuple[str, ...]] = ()
    # The setting that sizes the inner steps, for the advice when the meta-loss turns non-finite.
    inner_step_knob: ClassVar[str | None] = None
    # What the task lacks of CAPABILITIES, each as the reason why (the sentence an unsupported
    # pair's error quotes); None: it has it, or has it where its presupposition holds.
    no_inner_loop: ClassVar[str | None] = None
    no_inner_objective: ClassVar[str | OnlyWith | None] = None
    no_inner_optimum: ClassVar[str | OnlyWith | None] = None
    no_forward_mode: ClassVar[str | None] = None
    # The names that `evaluate` and `validate` report together, whatever the settings (a knob may
    # add more): the keys trainer.objective may name. Per data kind where they differ.
    reported_metrics: ClassVar[tuple[str, ...] | PerKind]
    # What a sweeper optimises unless trainer.objective names another: a validation figure where
    # the task has one, since a sweeper choosing by a test figure would fit the test split.
    default_objective: ClassVar[Objective | PerKind]

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        """θ before meta-training."""

    def sample(self, generator: torch.Generator, meta_batch: int) -> Problem:
        """ONE Problem batching `meta_batch` inner problems, all randomness from `generator`."""

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        """The field's protocol for θ: the final report (test splits)."""

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        """The pictures people look at (learned images, schedules, curves), drawn from θ and the
        run's own files (metrics.jsonl), written into `out_dir` (None: `run_dir`; `metaopt eval`
        writes beside the run's): their paths."""

    # Optional methods; where a task lacks one the trainer does what is said:
    #   validate(meta_params, generator) -> dict[str, float]: periodic evaluation on validation
    #       splits for model selection (without it: `evaluate`); `evaluate_validates = True` (class or
    #       instance attribute) where `evaluate` reports validate's figures too, so that the trainer
    #       does not ask for them again at the end;
    #   log_values(meta_params) -> dict[str, float]: readable values of θ for every metrics
    #       record (without it: none);
    #   outer_optimizer(meta_params, optimizer) -> optimizer: replaces the configured outer
    #       optimizer (without it: that optimizer).
    #   check_estimator(task_cfg, estimator_cfg), a static method: refuse, with a UserError, task
    #       settings that the configured estimator does not carry out, at start-up (without it:
    #       any the matrix allows).


def declared(task: type, name: str) -> Any:
    """A task class's declaration `name`, or the protocol's default where it has none."""
    return getattr(task, name) if hasattr(task, name) else getattr(Task, name)


def for_data(declaration: Any, kind: str | None) -> Any:
    """A declaration as it holds for data of `kind` (None: the task takes no data)."""
    return declaration[kind] if isinstance(declaration, dict) else declaration


def lacks(task: type, capability: str) -> str | OnlyWith | None:
    """Why the task lacks the capability, from its own declaration or that of what it
    presupposes; None where it has it."""
    reason = declared(task, f"no_{capability}")
    presupposed = CAPABILITIES[capability]
    return reason if reason is not None or presupposed is None else lacks(task, presupposed)
