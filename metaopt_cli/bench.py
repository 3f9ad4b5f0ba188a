"""Seconds and peak memory of one meta-gradient estimate, per estimator and horizon K."""
import statistics
from collections.abc import Callable

import torch
from omegaconf import DictConfig

from .errors import UserError
from .memory import measure_peak
from .timing import timed
from .compat import check_data, check_trainer
from .variants import check_names


def check_bench_config(cfg: DictConfig, choices) -> None:
    check_trainer(cfg.trainer)
    check_data(choices)
    options = cfg.bench
    if not options.horizons:
        raise UserError("bench.horizons is empty: pass the horizons K to measure, e.g. bench.horizons=[10,50,200]")
    if min(options.horizons) < 1:
        raise UserError(f"bench.horizons must be positive, got {min(options.horizons)}")
    if options.repeats < 1:
        raise UserError(f"bench.repeats must be at least 1, got {options.repeats}")
    check_names("bench.estimators", options.estimators)


def measure(estimate: Callable[[], object], repeats: int, device: torch.device) -> dict:
    """The peak memory of one estimate (which also warms up), then the median seconds of
    `repeats` more."""
    _, peak = measure_peak(estimate, device)
    seconds = statistics.median(timed(estimate, device)[1] for _ in range(repeats))
    return {"seconds": seconds, "peak_mem_bytes": peak}
