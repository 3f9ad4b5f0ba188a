"""Bayesian optimisation with Optuna's TPE (Bergstra et al. 2011): the HPO baseline people run,
one trial after another, each choosing its point from the trials before it."""
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def tpe_minimum(ranges: dict[str, tuple[float, float, bool]], trials: int, seed: int,
                loss: Callable[[dict[str, float]], float]) -> dict[str, float]:
    """The point of `ranges` ({name: (low, high, log scale)}) with the lowest loss among `trials`
    tried by TPE seeded with `seed`; a non-finite loss (a diverged run) counts as the worst."""
    # Optuna's import sets up alembic (its database storage), whose INFO lines would fill the run's log.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import optuna  # here: only task=hpo's evaluation needs it, and it takes a second to import

    sampler = optuna.samplers.TPESampler(seed=seed)
    with _quiet(optuna):
        study = optuna.create_study(direction="minimize", sampler=sampler)
        for _ in range(trials):
            trial = study.ask()
            point = {name: trial.suggest_float(name, low, high, log=log) for name, (low, high, log) in ranges.items()}
            value = loss(point)
            study.tell(trial, value if math.isfinite(value) else math.inf)
    return study.best_params


@contextmanager
def _quiet(optuna) -> Iterator[None]:
    """Optuna logs a line per trial: hundreds in one evaluation. Its verbosity is put back after,
    for a sweep run by Optuna's sweeper in this process."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
