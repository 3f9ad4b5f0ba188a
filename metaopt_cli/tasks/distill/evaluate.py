"""The field's protocol for distilled data: train fresh networks on it and report test
accuracy, beside the same number of random real images per class."""
import torch

from ...estimators.problem import Tensors
from ...functional import sample_inits, sgd_step, split_scores
from ...progress import progress
from .synthetic import random_real_images


def evaluate_distilled(task, meta_params: Tensors, generator: torch.Generator, split: str) -> dict[str, float]:
    """Fresh networks trained on the distilled set at its inner lr for the task's distilled_steps
    (K, as in meta-training, for unroll), scored on the `split` ("val": model selection, "test":
    the final report)."""
    with torch.no_grad():
        images, targets, lr = task.synthetic.unpack(meta_params)
        params = _train(task, generator, images, targets, lr, task.distilled_steps,
                        f"evaluate: distilled set on {split}")
        acc = _accuracy(task.net, params, getattr(task.data, split))
    return {f"distilled_{split}_acc": acc.mean().item(), f"distilled_{split}_acc_std": acc.std().item()}


def evaluate_random_real(task, generator: torch.Generator) -> dict[str, float]:
    """Random real images per class, each network its own draw, trained for `eval_steps`
    full-batch steps at the learning rate of the grid that does best on validation: a tuned
    baseline, so the comparison does not flatter distillation."""
    labels = task.synthetic.labels
    images = torch.stack([random_real_images(task.data, labels, generator) for _ in range(task.eval_models)])
    best = None
    with torch.no_grad():
        for lr in task.eval_lrs:
            params = _train(task, generator, images, labels, lr, task.eval_steps, f"evaluate: random real, lr {lr:g}",
                            data_dim=0)
            val = _accuracy(task.net, params, task.data.val).mean().item()
            if best is None or val > best[0]:
                best = (val, lr, params)
        _, lr, params = best
        acc = _accuracy(task.net, params, task.data.test)
    return {"random_real_test_acc": acc.mean().item(), "random_real_test_acc_std": acc.std().item(),
            "random_real_lr": lr}


def _train(task, generator, images, targets, lr, steps: int, desc: str, data_dim: int | None = None):
    params = sample_inits(task.make_net, task.eval_models, generator, images.device)
    for _ in progress(range(steps), desc):
        params = sgd_step(task.net, params, images, targets, lr, data_dim)
    return params


def _accuracy(net, params, split) -> torch.Tensor:
    return split_scores(net, params, split.x, split.y)[1]
