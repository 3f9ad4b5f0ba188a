"""The field's protocol for distilled data: train fresh networks on it and report test
accuracy, beside the same number of random real images per class; and, as the dataset
condensation papers report it (Zhao et al. 2021, Cazenavette et al. 2022), both trained into
other architectures than the one the set was distilled for (cross-architecture generalisation)."""
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


def evaluate_distilled(task, meta_params: Tensors, generator: torch.Generator, split: str) -> dict[str, float]:
    """Fresh networks trained on the distilled set at its inner lr for the task's distilled_steps
    (K, as in meta-training, for unroll), scored on the `split` ("val": model selection, "test":
    the final report)."""
    with torch.no_grad():
        images, targets, lr = task.synthetic.unpack(meta_params)
        params = _train(task, task.arch, generator, images, targets, lr, task.distilled_steps,
                        f"evaluate: distilled set on {split}")
        acc = _accuracy(task.net, params, getattr(task.data, split))
    return _figures(f"distilled_{split}_acc", acc)


def evaluate_random_real(task, generator: torch.Generator, arch: Architecture | None = None) -> dict[str, float]:
    """Random real images per class, each network its own draw, trained for `eval_steps`
    full-batch steps at the learning rate of the grid that does best on validation (for each
    architecture its own): a tuned baseline, so the comparison does not flatter distillation."""
    arch = arch or task.arch
    suffix = "" if arch is task.arch else f"_on_{arch.name}"
    labels = task.synthetic.labels
    images = torch.stack([random_real_images(task.data, labels, generator) for _ in range(task.eval_models)])
    accuracies, lr = _tuned(task, arch, generator, images, labels, "random real", data_dim=0)
    acc = accuracies["test"]
    return {**_figures(f"random_real_test_acc{suffix}", acc), f"random_real_lr{suffix}": lr}


def evaluate_across(task, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
    """The distilled set and the random-real baseline trained into each of task.eval_backbones
    (each at its option's defaults), keyed `<figure>_on_<backbone>` (a name W&B and `metaopt
    compare` both take: compare's accuracy keys end in `acc` or go on with `_`).

    The distilled set's K and learned inner lr belong to the network it was distilled for; into
    another architecture it trains as the baseline does (`eval_steps` steps at the lr of the grid
    best on validation, picked for each set on its own), so the two are compared like for like."""
    with torch.no_grad():
        images, targets, _ = task.synthetic.unpack(meta_params)
    results = {}
    for arch in task.eval_archs:
        accuracies, lr = _tuned(task, arch, generator, images, targets, "distilled set")
        acc = accuracies["test"]
        results |= {**_figures(f"distilled_test_acc_on_{arch.name}", acc), f"distilled_lr_on_{arch.name}": lr}
        results |= evaluate_random_real(task, generator, arch)
    return results


def evaluate_distilled_tuned(task, meta_params: Tensors, generator: torch.Generator, split: str) -> dict[str, float]:
    """A distilled set tied to no training schedule (gradient matching's): fresh networks trained
    on it as the random-real baseline is, as the condensation papers train theirs to convergence.
    The lr is picked on validation either way, so the final report ("test") gives the validation
    accuracy with the test's, from the same networks."""
    with torch.no_grad():
        images, targets, _ = task.synthetic.unpack(meta_params)
    splits = ("val",) if split == "val" else ("val", "test")
    accuracies, _ = _tuned(task, task.arch, generator, images, targets, "distilled set", splits=splits)
    return {key: value for s in splits for key, value in _figures(f"distilled_{s}_acc", accuracies[s]).items()}


def _tuned(task, arch: Architecture, generator, images, targets, what: str, data_dim: int | None = None,
           splits: tuple[str, ...] = ("test",)):
    """Accuracies on each of `splits` of networks of `arch` trained `eval_steps` full-batch steps
    at the lr of task.eval_lrs whose networks do best on validation, and that lr."""
    into = "" if arch is task.arch else f" into {arch.name}"
    best = None
    with torch.no_grad():
        for lr in task.eval_lrs:
            params = _train(task, arch, generator, images, targets, lr, task.eval_steps,
                            f"evaluate: {what}{into}, lr {lr:g}", data_dim)
            val = _accuracy(arch.net, params, task.data.val)
            if best is None or val.mean() > best[0].mean():
                best = (val, lr, params)
        val, lr, params = best
        return {split: val if split == "val" else _accuracy(arch.net, params, getattr(task.data, split))
                for split in splits}, lr


def _figures(key: str, acc: torch.Tensor) -> dict[str, float]:
    return {key: acc.mean().item(), f"{key}_std": acc.std().item()}


def _train(task, arch: Architecture, generator, images, targets, lr, steps: int, desc: str,
           data_dim: int | None = None):
    params = sample_inits(arch.make_net, task.eval_models, generator, images.device)
    for _ in progress(range(steps), desc):
        params = sgd_step(arch.net, params, images, targets, lr, data_dim)
    return params


def _accuracy(net, params, split) -> torch.Tensor:
    return split_scores(net, params, split.x, split.y)[1]
