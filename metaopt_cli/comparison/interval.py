"""A mean over seeds with its spread: the 95% confidence interval of the mean (Student's t, since
a sweep has a handful of seeds, where the normal's 1.96 would claim too much), or the seeds'
sample standard deviation, which is what dataset distillation papers print after their ±."""
import dataclasses
import math
import statistics

from scipy.special import stdtrit  # Student's t quantile; scipy.stats would take a second to import


@dataclasses.dataclass(frozen=True)
class Estimate:
    mean: float
    ci95: float | None  # the interval's half-width; None from one value, which has no spread
    n: int
    std: float | None = None  # the sample standard deviation (n − 1); None from one value

    def spread(self, kind: str) -> float | None:
        """`kind` as SPREADS names it."""
        return getattr(self, kind)


# What `±` can stand for (`metaopt compare --spread`), as captions name it.
SPREADS = {"ci95": "95% CI over seeds (Student t)", "std": "sample std over seeds"}


def estimate(values: list[float]) -> Estimate | None:
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(mean, None, 1)
    std = statistics.stdev(values)
    return Estimate(mean, float(stdtrit(len(values) - 1, 0.975)) * std / math.sqrt(len(values)), len(values), std)


def shown(value: Estimate, spread: str = "ci95") -> str:
    """`mean ± spread`, to the spread's second significant digit; four significant digits without one."""
    half = value.spread(spread)
    if half is None or not half > 0 or not math.isfinite(half):
        return f"{value.mean:.4g}"
    decimals = min(max(1 - math.floor(math.log10(half)), 0), 10)
    return f"{value.mean:.{decimals}f} ± {half:.{decimals}f}"
