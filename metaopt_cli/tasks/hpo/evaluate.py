"""The protocol of hyperparameter optimisation: retrain from scratch with the learned
hyperparameters on several seeds, beside the initial ones, random search and Bayesian
optimisation (TPE).

Both searches get the same budget: `random_search_trials` trials, each one run of K steps
(trials × K inner steps, the budget to compare meta-training's with, which an experiment sets
to match its estimator's). Random search draws its settings at once; TPE chooses each from the
ones before it. Each keeps its best on validation, retrained on the same seeds as the others.
Every retraining shares one seed, so the four differ only in their hyperparameters.
"""
import math

import torch
from torch.func import vmap

from ...estimators.problem import Tensors
from ...functional import split_scores, unprefixed
from ...progress import progress
from . import search_space
from .bayes_opt import tpe_minimum
from .problem import WEIGHTS
from .search_space import RANGES, searched

# The hyperparameters scored, and the searches among them (given the same budget).
SCORED = ("learned", "initial", "random_search", "bayes_opt")
SEARCHES = ("random_search", "bayes_opt")
SCORES = ("val_loss", "val_acc", "test_loss", "test_acc")
# What evaluate_hyperparams reports whatever the settings (the schedule adds its own values).
REPORTED = (*(f"{who}_{score}{stat}" for who in SCORED for score in SCORES for stat in ("", "_std")),
            *(f"{search}_{count}" for search in SEARCHES for count in ("trials", "inner_steps")),
            *(f"{who}_{name}" for who in ("learned", *SEARCHES) for name in ("lr", "momentum", "weight_decay")))


def evaluate_hyperparams(task, meta_params: Tensors, generator: torch.Generator) -> tuple[dict[str, float], dict]:
    """The figures, and the settings scored ({"learned": θ, "initial": …, "random_search": its best, …})."""
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    with torch.no_grad():
        initial = task.hyperparams.init_meta_params(task.device)
        trials = _random_settings(task, generator)
        best = _best_trial(task, trials, generator)
        bayes_opt = _bayes_opt(task, generator)
        settings = {"learned": meta_params, "initial": initial, "random_search": best, "bayes_opt": bayes_opt}
        results = {}
        for prefix, chosen in settings.items():
            scores = _retrained_scores(task, chosen, torch.Generator(generator.device).manual_seed(seed),
                                       f"evaluate: {prefix} hyperparameters")
            results.update({f"{prefix}_{name}": value for name, value in scores.items()})
    for search in SEARCHES:
        results[f"{search}_trials"] = task.random_search_trials
        results[f"{search}_inner_steps"] = task.random_search_trials * task.hyperparams.horizon
    for prefix in ("learned", *SEARCHES):
        readable = task.hyperparams.readable(task.hyperparams.complete(settings[prefix]))
        results.update({f"{prefix}_{name}": value for name, value in readable.items()})
    return results, settings


def _retrained_scores(task, setting: Tensors, generator: torch.Generator, desc: str) -> dict[str, float]:
    """Validation and test loss and accuracy after K steps from `eval_seeds` fresh networks: mean and std."""
    weights = _trained_weights(task.sample(generator, task.eval_seeds), setting, desc)
    val_loss, val_acc = split_scores(task.net, weights, task.data.val.x, task.data.val.y)
    test_loss, test_acc = split_scores(task.net, weights, task.data.test.x, task.data.test.y)
    scores = {"val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc}
    summary = {}
    for name, values in scores.items():
        summary[name] = values.mean().item()
        summary[f"{name}_std"] = values.std().item()
    return summary


def _best_trial(task, trials: Tensors, generator: torch.Generator) -> Tensors:
    """The trial whose run ends with the lowest validation loss; all trials train at once."""
    desc = f"evaluate: random search, {task.random_search_trials} trials at once"
    val_loss = _val_losses(task, task.sample(generator, 1), trials, desc)
    # A diverged run scores nan or inf; it must never be the best.
    best = int(torch.nan_to_num(val_loss, nan=math.inf).argmin())
    return {name: value[best] for name, value in trials.items()}


def _val_losses(task, problem, trials: Tensors, desc: str) -> torch.Tensor:
    """The validation loss after one run of K steps with each of the stacked settings, from the
    problem's one initialisation and minibatches."""
    weights = vmap(lambda setting: _trained_weights(problem, setting, desc))(trials)
    val = task.data.val
    return vmap(lambda w: split_scores(task.net, w, val.x, val.y)[0])(weights).squeeze(-1)


def _bayes_opt(task, generator: torch.Generator) -> Tensors:
    """TPE's best of `random_search_trials` trials, each one run of K steps from the same
    initialisation and minibatches (a problem of its own), scored by its validation loss."""
    seed = int(torch.randint(2**31 - 1, (), generator=generator, device=generator.device))
    problem = task.sample(generator, 1)
    bar = progress(desc="evaluate: TPE, trials", total=task.random_search_trials)  # TPE asks one trial after another

    def val_losses(points: list[dict[str, float]]) -> list[float]:
        stacked = _stacked([search_space.setting(task, point) for point in points])
        losses = _val_losses(task, problem, stacked, "evaluate: TPE, a trial").tolist()
        bar.update(len(points))
        return losses

    ranges = {name: RANGES[name] for name in searched(task.hyperparams)}
    with bar:
        return search_space.setting(task, tpe_minimum(ranges, task.random_search_trials, seed, val_losses))


def _trained_weights(problem, setting: Tensors, desc: str) -> Tensors:
    state = problem.init(setting)
    for t in progress(range(problem.horizon), desc):
        state = problem.step(setting, state, t)
    return unprefixed(state, WEIGHTS)


def _random_settings(task, generator: torch.Generator) -> Tensors:
    """`random_search_trials` draws of the learned hyperparameters, stacked, in meta-parameter form."""
    count = task.random_search_trials

    def draw(low: float, high: float, log: bool) -> list[float]:
        low, high = (math.log(low), math.log(high)) if log else (low, high)
        values = low + (high - low) * torch.rand(count, generator=generator, device=generator.device)
        return (values.exp() if log else values).tolist()

    # Every range is drawn, in RANGES' order, whichever are searched: the same draws for any settings.
    draws = {name: draw(*bounds) for name, bounds in RANGES.items()}
    names = searched(task.hyperparams)
    return _stacked([search_space.setting(task, {name: draws[name][trial] for name in names}) for trial in range(count)])


def _stacked(settings: list[Tensors]) -> Tensors:
    return {name: torch.stack([s[name] for s in settings]) for name in settings[0]}
