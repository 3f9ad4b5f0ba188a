"""Scoring a distilled set that is not tied to a training schedule (gradient matching's): fresh
networks trained on it for `task.eval_steps` full-batch steps at the learning rate of
`task.eval_lrs` that does best on validation, the same protocol as the random-real baseline,
as the condensation papers train their evaluation networks to convergence."""
import torch

from ...estimators.problem import Tensors
from ...functional import sample_inits, sgd_step, split_scores
from ...progress import progress


def evaluate_tuned(task, meta_params: Tensors, generator: torch.Generator, split: str) -> dict[str, float]:
    """The distilled set's accuracy on `split` ("val": model selection, "test": the final
    report), the learning rate picked on validation either way."""
    best = None
    with torch.no_grad():
        images, targets, _ = task.synthetic.unpack(meta_params)
        for lr in task.eval_lrs:
            params = sample_inits(task.make_net, task.eval_models, generator, images.device)
            for _ in progress(range(task.eval_steps), f"evaluate: distilled set, lr {lr:g}"):
                params = sgd_step(task.net, params, images, targets, lr)
            val = split_scores(task.net, params, task.data.val.x, task.data.val.y)[1]
            if best is None or val.mean() > best[0].mean():
                best = (val, params)
        acc, params = best
        if split != "val":
            acc = split_scores(task.net, params, getattr(task.data, split).x, getattr(task.data, split).y)[1]
    return {f"distilled_{split}_acc": acc.mean().item(), f"distilled_{split}_acc_std": acc.std().item()}
