"""Bayesian optimisation with Optuna's TPE (Bergstra et al. 2011): the HPO baseline people run,
each round of trials chosen from the results of the rounds before it."""
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# TPE updates its model this many times, whatever the budget: a round's trials are asked for
# together and train at once (vmapped, as random search's do), which on a CPU is ten times faster
# than one run after another; Hydra's Optuna sweeper batches its trials the same way (n_jobs).
ROUNDS = 20


def tpe_minimum(ranges: dict[str, tuple[float, float, bool]], trials: int, seed: int,
                losses: Callable[[list[dict[str, float]]], list[float]]) -> dict[str, float]:
    """The point of `ranges` ({name: (low, high, log scale)}) with the lowest loss among `trials`
    tried by TPE seeded with `seed`; `losses` scores a round's points together. A non-finite loss
    (a diverged run) counts as the worst."""
    # Optuna's import sets up alembic (its database storage), whose INFO lines would fill the run's log.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import optuna  # here: only task=hpo's evaluation needs it, and it takes a second to import

    per_round = math.ceil(trials / ROUNDS)
    with _quiet(optuna):
        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
        for start in range(0, trials, per_round):
            asked = [study.ask() for _ in range(min(per_round, trials - start))]
            points = [{name: trial.suggest_float(name, low, high, log=log) for name, (low, high, log) in ranges.items()}
                      for trial in asked]
            for trial, value in zip(asked, losses(points)):
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
