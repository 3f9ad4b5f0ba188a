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

from ..distributed import Rows, Sharded
from ..errors import UserError
from .problem import Problem, Tensors, split

# A rank's share of a (whole) problem, and which rows of the whole inner state and accumulated
# perturbations it holds (None: all of them). One process holds the whole of everything.
Share = Callable[[Problem], Problem]
Layout = Callable[[Problem], tuple[Rows | None, Rows | None]]


def whole(problem: Problem) -> Problem:
    return problem


def unsplit(problem: Problem) -> tuple[None, None]:
    return None, None


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

    def state_dict(self, state_rows: Rows | None, perturbation_rows: Rows | None) -> dict:
        """The run as data; a rank's rows of what ranks split are marked Sharded, for the
        checkpoint to assemble whole."""
        if self.draw is None:
            raise RuntimeError("an inner run whose problem the trainer did not sample cannot be checkpointed")
        state = None if self.state is None else _sharded(self.state, state_rows)
        return {"draw": self.draw, "part": self.part, "state": state, "step": self.step,
                "perturbations": _sharded(self.perturbations, perturbation_rows)}

    @classmethod
    def from_state_dict(cls, saved: dict, resample: Resample, share: Share, layout: Layout) -> "InnerRun":
        """The run from a checkpoint (of the whole run, whatever the ranks that wrote it): this
        rank's share of its problem, and its rows of the state and perturbations."""
        problem = resample(saved["draw"])
        if saved["part"] is not None:
            problem = split(problem)[saved["part"]]
        problem = share(problem)
        state_rows, perturbation_rows = layout(problem)
        state = None if saved["state"] is None else _placed(saved["state"], state_rows, resample.device)
        return cls(problem, saved["draw"], saved["part"], state, saved["step"],
                   _placed(saved["perturbations"], perturbation_rows, resample.device))


def _sharded(tensors: Tensors, rows: Rows | None) -> dict:
    return dict(tensors) if rows is None else {name: Sharded(value, rows) for name, value in tensors.items()}


def _placed(tensors: Tensors, rows: Rows | None, device: torch.device) -> Tensors:
    return {name: (value if rows is None else rows.take(value)).to(device) for name, value in tensors.items()}


class OnlineRuns:
    """The inner runs an online estimator carries across meta-steps.

    Plain: one run over the whole meta-batch, restarted from the meta-step's problem when it
    reaches the horizon. Staggered: one run per part of the problem, run i of N first advanced
    to step round(i·K/N) (without a gradient) so that the runs restart at different meta-steps
    rather than all together at K, as learned_optimization's truncated states do.
    """

    def __init__(self, stagger: bool, share: Share = whole, layout: Layout = unsplit):
        self.stagger, self.share, self.layout, self.runs = stagger, share, layout, []

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
        if not hasattr(problem, "select"):
            raise UserError("estimator.stagger staggers a meta-batch's separate inner runs, and this task's problem "
                            "is one run: leave estimator.stagger=false")
        pieces = split(problem)
        if len(pieces) < 2:
            raise UserError("estimator.stagger staggers a meta-batch's inner runs, and this one has a single run: "
                            "use trainer.meta_batch of 2 or more, or estimator.stagger=false")
        return pieces

    def state_dict(self) -> dict:
        return {"stagger": self.stagger, "runs": [run.state_dict(*self.layout(run.problem)) for run in self.runs]}

    def load_state_dict(self, saved: dict, resample: Resample) -> None:
        if saved["stagger"] != self.stagger:
            raise UserError(f"this run was checkpointed with estimator.stagger={str(saved['stagger']).lower()}: "
                            "leave estimator.stagger as it was, or start a new run")
        self.runs = [InnerRun.from_state_dict(run, resample, self.share, self.layout) for run in saved["runs"]]
