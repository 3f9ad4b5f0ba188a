"""The field's protocol for distilled data: train fresh networks on it and report test
accuracy, beside the same number of random real images per class; and, as dataset
condensation papers report (Zhao et al. 2021, Cazenavette et al. 2022), the same into other
architectures than the one the set was distilled for (cross-architecture generalisation)."""
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ...estimators.problem import Tensors
from ...functional import sample_inits, sgd_step, split_scores
from ...progress import progress
from .synthetic import random_real_images


@dataclass(frozen=True)
class Architecture:
    name: str
    make_net: Callable[[], nn.Module]  # a fresh network for the data
    net: nn.Module  # the architecture, used functionally; its own weights are never used


def evaluate_distilled(task, meta_params: Tensors, generator: torch.Generator, split: str,
                       arch: Architecture | None = None) -> dict[str, float]:
    """Fresh networks trained exactly as in meta-training: K steps on the distilled set at its
    inner lr, scored on the `split` ("val": model selection, "test": the final report); networks
    of `arch` (default: the one distilled for)."""
    arch = arch or task.arch
    with torch.no_grad():
        images, targets, lr = task.synthetic.unpack(meta_params)
        params = _train(task, arch, generator, images, targets, lr, task.horizon,
                        f"evaluate: distilled set{_into(task, arch)} on {split}")
        acc = _accuracy(arch.net, params, getattr(task.data, split))
    return _figures(f"distilled_{split}_acc", acc, _suffix(task, arch))


def evaluate_random_real(task, generator: torch.Generator, arch: Architecture | None = None) -> dict[str, float]:
    """Random real images per class, each network its own draw, trained for `eval_steps`
    full-batch steps at the learning rate of the grid that does best on validation (for each
    architecture its own): a tuned baseline, so the comparison does not flatter distillation."""
    arch = arch or task.arch
    labels = task.synthetic.labels
    images = torch.stack([random_real_images(task.data, labels, generator) for _ in range(task.eval_models)])
    best = None
    with torch.no_grad():
        for lr in task.eval_lrs:
            params = _train(task, arch, generator, images, labels, lr, task.eval_steps,
                            f"evaluate: random real{_into(task, arch)}, lr {lr:g}", data_dim=0)
            val = _accuracy(arch.net, params, task.data.val).mean().item()
            if best is None or val > best[0]:
                best = (val, lr, params)
        _, lr, params = best
        acc = _accuracy(arch.net, params, task.data.test)
    suffix = _suffix(task, arch)
    return {**_figures("random_real_test_acc", acc, suffix), f"random_real_lr{suffix}": lr}


def evaluate_across(task, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
    """The distilled set and the random-real baseline trained into each of task.eval_backbones
    (each at its default config), keyed `<figure>_on_<backbone>`."""
    results = {}
    for arch in task.eval_archs:
        results |= evaluate_distilled(task, meta_params, generator, "test", arch)
        results |= evaluate_random_real(task, generator, arch)
    return results


def _suffix(task, arch: Architecture) -> str:
    """'' for the network distilled for; `_on_<backbone>` for the others (a name that W&B and
    `metaopt compare` both take: compare's accuracy keys end in `acc` or continue with `_`)."""
    return "" if arch is task.arch else f"_on_{arch.name}"


def _into(task, arch: Architecture) -> str:
    return "" if arch is task.arch else f" into {arch.name}"


def _figures(key: str, acc: torch.Tensor, suffix: str) -> dict[str, float]:
    return {f"{key}{suffix}": acc.mean().item(), f"{key}{suffix}_std": acc.std().item()}


def _train(task, arch: Architecture, generator, images, targets, lr, steps: int, desc: str,
           data_dim: int | None = None):
    params = sample_inits(arch.make_net, task.eval_models, generator, images.device)
    for _ in progress(range(steps), desc):
        params = sgd_step(arch.net, params, images, targets, lr, data_dim)
    return params


def _accuracy(net, params, split) -> torch.Tensor:
    return split_scores(net, params, split.x, split.y)[1]
