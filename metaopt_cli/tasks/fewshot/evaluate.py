"""The few-shot protocol: adapt on the support set of `task.test_episodes` meta-test episodes
(fixed by the seed), score on their queries, report the mean ± 95% confidence interval."""
import torch
from torch.func import vmap

from ...estimators.problem import Tensors
from ...estimators.unroll import unroll
from .losses import mean_ci95, task_score

CHUNK = 50  # episodes adapted at once: memory against speed


def evaluate_adaptation(task, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
    before, after = [], []
    with torch.no_grad():
        for start in range(0, task.test_episodes, CHUNK):
            episodes = task.source.sample("test", min(CHUNK, task.test_episodes - start), generator)
            problem = task.problem_for(episodes, task.test_horizon)
            state = problem.init(meta_params)
            before.append(_query_scores(problem, meta_params, state))
            adapted, _ = unroll(problem, meta_params, state, 0, task.test_horizon)
            after.append(_query_scores(problem, meta_params, adapted))
    after_mean, after_ci = mean_ci95(torch.cat(after))
    if task.source.classification:
        return {"test_acc": after_mean, "test_acc_ci95": after_ci}
    before_mean, before_ci = mean_ci95(torch.cat(before))
    return {"test_mse": after_mean, "test_mse_ci95": after_ci,
            "pre_adapt_test_mse": before_mean, "pre_adapt_test_mse_ci95": before_ci}


def _query_scores(problem, meta_params: Tensors, state: Tensors) -> torch.Tensor:
    """Each episode's query accuracy (or MSE)."""
    episodes = problem.episodes
    return vmap(lambda adapted, x, y: task_score(problem.forward(adapted, meta_params, x), y))(
        state, episodes.query_x, episodes.query_y
    )
