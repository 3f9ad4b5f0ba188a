"""A mean over seeds and its 95% confidence interval: Student's t, since a sweep has a handful
of seeds, where the normal's 1.96 would claim too much."""
import dataclasses
import math
import statistics

from scipy.special import stdtrit  # Student's t quantile; scipy.stats would take a second to import


@dataclasses.dataclass(frozen=True)
class Estimate:
    mean: float
    ci95: float | None  # the interval's half-width; None from one value, which has no spread
    n: int


def estimate(values: list[float]) -> Estimate | None:
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(mean, None, 1)
    standard_error = statistics.stdev(values) / math.sqrt(len(values))
    return Estimate(mean, float(stdtrit(len(values) - 1, 0.975)) * standard_error, len(values))


def shown(value: Estimate) -> str:
    """`mean ± half-width`, to the CI's second significant digit; four significant digits without one."""
    if value.ci95 is None or not value.ci95 > 0 or not math.isfinite(value.ci95):
        return f"{value.mean:.4g}"
    decimals = min(max(1 - math.floor(math.log10(value.ci95)), 0), 10)
    return f"{value.mean:.{decimals}f} ± {value.ci95:.{decimals}f}"
