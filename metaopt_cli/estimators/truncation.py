"""Windows of T steps, shared by the truncated estimators."""
from ..errors import UserError


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
