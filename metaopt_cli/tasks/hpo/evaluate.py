"""The protocol of hyperparameter optimisation: retrain from scratch with the learned
hyperparameters on several seeds, beside the initial ones and random search.

Random search draws `random_search_trials` settings of the learned hyperparameters, trains one
run of K steps with each (trials × K inner steps, the budget to compare meta-training's with),
keeps the best on validation and retrains it on the same seeds as the others. Every retraining
shares one seed, so the three differ only in their hyperparameters.
"""
import math

import torch
from torch.func import vmap

from ...estimators.problem import Tensors
from ...functional import split_scores, unprefixed
from ...progress import progress
from .problem import WEIGHTS

# Random search's ranges: log-uniform learning rate and weight decay, uniform momentum and decay power.
SEARCH_LR = (1e-3, 1.0)
SEARCH_MOMENTUM = (0.0, 0.99)
SEARCH_WEIGHT_DECAY = (1e-6, 1e-2)
SEARCH_DECAY = (0.0, 3.0)


def evaluate_hyperparams(task, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    with torch.no_grad():
        initial = task.hyperparams.init_meta_params(task.device)
        trials = _random_settings(task, generator)
        best = _best_trial(task, trials, generator)
        results = {}
        for prefix, setting in (("learned", meta_params), ("initial", initial), ("random_search", best)):
            scores = _retrained_scores(task, setting, torch.Generator(generator.device).manual_seed(seed),
                                       f"evaluate: {prefix} hyperparameters")
            results.update({f"{prefix}_{name}": value for name, value in scores.items()})
    results["random_search_trials"] = task.random_search_trials
    results["random_search_inner_steps"] = task.random_search_trials * task.hyperparams.horizon
    for prefix, setting in (("learned", meta_params), ("random_search", best)):
        readable = task.hyperparams.readable(task.hyperparams.complete(setting))
        results.update({f"{prefix}_{name}": value for name, value in readable.items()})
    return results


def _retrained_scores(task, setting: Tensors, generator: torch.Generator,
                      desc: str = "evaluate: retraining") -> dict[str, float]:
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
    problem = task.sample(generator, 1)
    desc = f"evaluate: random search, {task.random_search_trials} trials at once"
    weights = vmap(lambda setting: _trained_weights(problem, setting, desc))(trials)
    val = task.data.val
    val_loss = vmap(lambda w: split_scores(task.net, w, val.x, val.y)[0])(weights).squeeze(-1)
    # A diverged run scores nan or inf; it must never be the best.
    best = int(torch.nan_to_num(val_loss, nan=math.inf).argmin())
    return {name: value[best] for name, value in trials.items()}


def _trained_weights(problem, setting: Tensors, desc: str = "evaluate: training") -> Tensors:
    state = problem.init(setting)
    for t in progress(range(problem.horizon), desc):
        state = problem.step(setting, state, t)
    return unprefixed(state, WEIGHTS)


def _random_settings(task, generator: torch.Generator) -> Tensors:
    """`random_search_trials` draws of the learned hyperparameters, stacked, in meta-parameter form
    (a per-step schedule is searched as a constant learning rate)."""
    hp, count = task.hyperparams, task.random_search_trials

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, generator=generator, device=generator.device)

    def log_uniform(low: float, high: float) -> torch.Tensor:
        return uniform(math.log(low), math.log(high)).exp()

    learned = set(hp.init_meta_params(task.device))
    draws = zip(log_uniform(*SEARCH_LR).tolist(), uniform(*SEARCH_DECAY).tolist(),
                uniform(*SEARCH_MOMENTUM).tolist(), log_uniform(*SEARCH_WEIGHT_DECAY).tolist())
    settings = []
    for lr, decay, momentum, weight_decay in draws:
        every = hp.unconstrained(
            lr if "lr" in hp.learned else hp.lr, decay if "lr" in hp.learned else hp.decay,
            momentum if "momentum" in hp.learned else hp.momentum,
            weight_decay if "weight_decay" in hp.learned else hp.weight_decay,
        )
        settings.append({name: every[name].to(task.device) for name in learned})
    return {name: torch.stack([s[name] for s in settings]) for name in settings[0]}
