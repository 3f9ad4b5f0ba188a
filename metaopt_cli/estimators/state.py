"""An online estimator's inner runs in progress, as data: tensors and plain numbers.

Online, an inner run outlives the meta-step that started it, so a checkpoint must carry it.
It keeps the run's state, its step and what the estimator accumulates along it (PES's
perturbations), and instead of the problem, how the problem was drawn: the generator's state
just before `task.sample` and the meta-batch size. On resume the problem is sampled again from
that state, never unpickled; the checkpoint stays small whatever the dataset, loads with
`weights_only=True` and survives a renamed class (learned_optimization keeps its truncated
states as plain data for the same reasons).
"""
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import UserError
from .problem import Problem, Tensors


def sample(task, generator: torch.Generator, count: int) -> Problem:
    """task.sample, with how it was drawn noted on the problem (`problem.draw`), for an online
    estimator to keep in place of the problem."""
    draw = {"generator_state": generator.get_state(), "count": count}
    problem = task.sample(generator, count)
    problem.draw = draw
    return problem


@dataclass
class Resample:
    """Samples a recorded draw's problem again, from a generator of its own: the run's
    generator stays where it is. `task.sample` depends on nothing but the generator's state."""

    task: object
    device: torch.device

    def __call__(self, draw: dict) -> Problem:
        generator = torch.Generator(self.device)
        generator.set_state(draw["generator_state"])
        return sample(self.task, generator, draw["count"])


def check_stagger(stagger: bool, online: bool) -> None:
    if stagger and not online:
        raise UserError("estimator.stagger staggers the inner runs of online windows: set estimator.online=true too, "
                        "or estimator.stagger=false")


@dataclass
class InnerRun:
    """One inner run part-way through: the whole sampled problem, or one of its parts."""

    problem: Problem
    draw: dict | None  # how `problem` was sampled (None: not by the trainer, so never checkpointed)
    part: int | None  # which of the drawn problem's parts this run works on; None: all of it
    state: Tensors | None = None  # None until the first window sets it
    step: int = 0
    # PES: the perturbations each particle has accumulated along the run (empty for TBPTT).
    # Replaced, never changed in place, so that a state_dict taken earlier stays as it was.
    perturbations: Tensors = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.step >= self.problem.horizon

    def next_window(self, truncation: int) -> tuple[int, int]:
        return self.step, min(self.step + truncation, self.problem.horizon)

    def state_dict(self) -> dict:
        if self.draw is None:
            raise RuntimeError("an inner run whose problem the trainer did not sample cannot be checkpointed")
        return {"draw": self.draw, "part": self.part, "state": self.state, "step": self.step,
                "perturbations": self.perturbations}

    @classmethod
    def from_state_dict(cls, saved: dict, resample: Resample) -> "InnerRun":
        problem = resample(saved["draw"])
        if saved["part"] is not None:
            problem = problem.split()[saved["part"]]
        state = None if saved["state"] is None else _to(saved["state"], resample.device)
        return cls(problem, saved["draw"], saved["part"], state, saved["step"],
                   _to(saved["perturbations"], resample.device))


def _to(tensors: Tensors, device: torch.device) -> Tensors:
    return {name: value.to(device) for name, value in tensors.items()}


class OnlineRuns:
    """The inner runs an online estimator carries across meta-steps.

    Plain: one run over the whole meta-batch, restarted from the meta-step's problem when it
    reaches the horizon. Staggered: one run per part of the problem, run i of N first advanced
    to step round(i·K/N) (without a gradient) so that the runs restart at different meta-steps
    rather than all together at K, as learned_optimization's truncated states do.
    """

    def __init__(self, stagger: bool):
        self.stagger, self.runs = stagger, []

    def current(self, problem: Problem, start: Callable[[InnerRun, int], None]) -> list[InnerRun]:
        """The runs for this meta-step's window: any that reached its horizon starts afresh on
        (its part of) `problem`, the problem this meta-step sampled. start(run, offset) sets up
        a fresh run's state and carries it to step `offset`."""
        draw = getattr(problem, "draw", None)
        if not self.runs:
            pieces = self._pieces(problem) if self.stagger else [problem]
            for i, piece in enumerate(pieces):
                run = InnerRun(piece, draw, i if self.stagger else None)
                start(run, round(i * piece.horizon / len(pieces)))
                self.runs.append(run)
            return self.runs
        for i, run in enumerate(self.runs):
            if run.finished:
                piece = self._pieces(problem)[run.part] if self.stagger else problem
                self.runs[i] = InnerRun(piece, draw, run.part)
                start(self.runs[i], 0)
        return self.runs

    def _pieces(self, problem: Problem) -> list[Problem]:
        if not hasattr(problem, "split"):
            raise UserError("estimator.stagger staggers a meta-batch's separate inner runs, and this task's problem "
                            "is one run: leave estimator.stagger=false")
        pieces = problem.split()
        if len(pieces) < 2:
            raise UserError("estimator.stagger staggers a meta-batch's inner runs, and this one has a single run: "
                            "use trainer.meta_batch of 2 or more, or estimator.stagger=false")
        return pieces

    def state_dict(self) -> dict:
        return {"stagger": self.stagger, "runs": [run.state_dict() for run in self.runs]}

    def load_state_dict(self, saved: dict, resample: Resample) -> None:
        if saved["stagger"] != self.stagger:
            raise UserError(f"this run was checkpointed with estimator.stagger={str(saved['stagger']).lower()}: "
                            "leave estimator.stagger as it was, or start a new run")
        self.runs = [InnerRun.from_state_dict(run, resample) for run in saved["runs"]]
