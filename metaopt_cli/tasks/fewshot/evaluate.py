"""The few-shot protocol: adapt on the support sets of `task.test_episodes` episodes of a
meta-split (fixed by the generator), score on their queries, report the mean ± 95% confidence
interval. Meta-val scores the run while it trains (model selection); meta-test is the final
report, never looked at before."""
import torch
from torch.func import vmap

from ...estimators.problem import Tensors
from ...estimators.unroll import unroll
from ...progress import progress
from ..protocol import Objective
from .losses import mean_ci95, task_score

# What the protocol reports on classes, meta-val (validate) and meta-test (evaluate) together.
CLASSIFICATION_METRICS = ("val_acc", "val_acc_ci95", "test_acc", "test_acc_ci95")
VAL_ACC = Objective("val_acc", "maximize")

CHUNK = 50  # episodes adapted at once: memory against speed


def evaluate_adaptation(task, meta_params: Tensors, generator: torch.Generator, split: str) -> dict[str, float]:
    """`split` ("val" or "test") names the meta-split and prefixes the keys: {split}_acc, or
    {split}_mse and, for the final report, the error before adaptation beside it."""
    before, after = [], []
    # Regression reports how much adapting gained; classification's chance level says that already.
    with_before = split == "test" and not task.source.classification
    with torch.no_grad():
        for start in progress(range(0, task.test_episodes, CHUNK), f"meta-{split}: {CHUNK} episodes at a time"):
            episodes = task.source.sample(split, min(CHUNK, task.test_episodes - start), generator)
            problem = task.problem_for(episodes, task.test_horizon)
            state = problem.init(meta_params)
            if with_before:
                before.append(_query_scores(problem, meta_params, state))
            adapted, _ = unroll(problem, meta_params, state, 0, task.test_horizon)
            after.append(_query_scores(problem, meta_params, adapted))
    metric = f"{split}_acc" if task.source.classification else f"{split}_mse"
    after_mean, after_ci = mean_ci95(torch.cat(after))
    results = {metric: after_mean, f"{metric}_ci95": after_ci}
    if with_before:
        before_mean, before_ci = mean_ci95(torch.cat(before))
        results.update({f"pre_adapt_{metric}": before_mean, f"pre_adapt_{metric}_ci95": before_ci})
    return results


def _query_scores(problem, meta_params: Tensors, state: Tensors) -> torch.Tensor:
    """Each episode's query accuracy (or MSE)."""
    episodes = problem.episodes
    return vmap(lambda adapted, x, y: task_score(problem.forward(adapted, meta_params, x), y))(
        state, episodes.query_x, episodes.query_y
    )
