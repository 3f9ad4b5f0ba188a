"""Windows of T steps, shared by the truncated estimators."""
from ..errors import UserError
from .problem import Problem


def check_truncation(truncation: int) -> None:
    if truncation < 1:
        raise UserError(f"estimator.truncation must be at least 1, got {truncation}: pass e.g. estimator.truncation=10")


def check_truncation_fits(truncation: int, horizon: int | None) -> None:
    if horizon is not None and truncation > horizon:
        raise UserError(
            f"estimator.truncation={truncation} is longer than task.horizon={horizon}: "
            f"choose a truncation of at most {horizon} (equal to it is full backprop)"
        )


def windows(horizon: int, truncation: int) -> list[tuple[int, int]]:
    """(start, stop) of each window. They end at K, K−T, …, so the last step always gets a
    full window and the first may be shorter."""
    first = horizon % truncation or truncation
    boundaries = [0, *range(first, horizon + 1, truncation)]
    return list(zip(boundaries, boundaries[1:]))


def online_weight(problem: Problem, start: int, stop: int) -> float:
    """Online, each window scores the mean of its own objective terms, so the outer step
    size means the same whatever the horizon; 0 where a window scores none."""
    steps = problem.objective_steps
    scored = len(range(max(start + 1, steps.start), min(stop + 1, steps.stop)))
    return len(steps) / scored if scored else 0.0
