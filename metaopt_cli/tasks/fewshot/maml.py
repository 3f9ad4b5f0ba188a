"""MAML (Finn et al. 2017) and its variants: Meta-SGD's learned per-parameter inner learning
rates, first-order MAML, ANIL (adapt the head only), and iMAML's proximal inner objective
(with estimator=implicit)."""
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ...config.tasks import Batching
from ...errors import UserError
from ...estimators.problem import Tensors
from ...functional import sample_inits
from ..protocol import Objective
from .evaluate import CLASSIFICATION_METRICS, VAL_ACC, evaluate_adaptation
from .losses import check_test_episodes
from .maml_problem import LR_PREFIX, MAMLProblem
from .picture import save_sinusoid_picture
from .source import EpisodeSource

class MAML:
    default_estimator = "backprop"  # second-order MAML, as published
    data_kinds = ("classification", "few_shot", "regression")
    inner_step_knob = "task.inner_lr"
    reported_metrics = {"classification": CLASSIFICATION_METRICS, "few_shot": CLASSIFICATION_METRICS,
                        "regression": ("val_mse", "val_mse_ci95", "test_mse", "test_mse_ci95", "pre_adapt_test_mse",
                                       "pre_adapt_test_mse_ci95")}
    default_objective = {"classification": VAL_ACC, "few_shot": VAL_ACC, "regression": Objective("val_mse", "minimize")}

    def __init__(
        self,
        data,
        make_backbone: Callable[..., nn.Module],
        device: torch.device,
        horizon: int,
        ways: int,
        shots: int,
        queries: int,
        inner_lr: float,
        learn_inner_lr: bool,
        first_order: bool,
        anil: bool,
        proximal: float,
        test_episodes: int,
        test_horizon: int,
        split_seed: int,
        batching: Batching | str,
    ):
        if horizon < 1 or test_horizon < 1 or not inner_lr > 0 or proximal < 0:
            raise UserError(
                "task.horizon and task.test_horizon must be at least 1, task.inner_lr positive and task.proximal ≥ 0; "
                f"got {horizon}, {test_horizon}, {inner_lr}, {proximal}"
            )
        check_test_episodes(test_episodes)
        self.source = EpisodeSource.of(data, ways, shots, queries, split_seed)
        self.make_net = lambda: make_backbone(in_shape=self.source.in_shape, num_outputs=self.source.num_outputs)
        self.net, self.device = self.make_net().to(device), device
        self.batching = resolved_batching(Batching(batching), device, self.net)
        names = [name for name, _ in self.net.named_parameters()]
        self.adapted = tuple(head_parameter_names(self.net) if anil else names)
        self.horizon, self.test_horizon, self.test_episodes = horizon, test_horizon, test_episodes
        self.inner_lr, self.learn_inner_lr = inner_lr, learn_inner_lr
        self.first_order, self.proximal = first_order, proximal

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        init = {name: value[0] for name, value in sample_inits(self.make_net, 1, generator, self.device).items()}
        if self.learn_inner_lr:  # Meta-SGD: one learning rate per adapted weight, stored as its log
            init.update({LR_PREFIX + name: torch.full_like(init[name], math.log(self.inner_lr)) for name in self.adapted})
        return init

    def sample(self, generator: torch.Generator, count: int) -> MAMLProblem:
        return self.problem_for(self.source.sample("train", count, generator), self.horizon)

    def validate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        """The protocol on meta-val: what the run is judged by while it trains."""
        return evaluate_adaptation(self, meta_params, generator, "val")

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        """The protocol on meta-test: the final report."""
        return evaluate_adaptation(self, meta_params, generator, "test")

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        if self.source.classification:
            return []
        path = (out_dir or run_dir) / "sinusoid.png"
        save_sinusoid_picture(self, meta_params, path)
        return [path]

    def problem_for(self, episodes, horizon: int) -> MAMLProblem:
        return MAMLProblem(self.net, episodes, horizon, self.inner_lr, self.adapted, self.first_order, self.proximal,
                           self.batching)


def resolved_batching(batching: Batching, device: torch.device, net: nn.Module) -> str:
    """auto: vmap on CUDA, where one batched kernel beats a loop of small ones. On a CPU, the loop
    for a convolutional backbone, whose meta-batch-times larger activations under vmap cost more
    than they save (Conv-4 on 84×84 images: the loop at 1.00× `higher`'s speed, vmap at 0.47×;
    scripts/bench_maml.py), and vmap for an MLP, where the loop's per-task overhead dominates
    (300 meta-steps of the sinusoid experiment: vmap 6.3 s, the loop 18.6 s)."""
    if batching is not Batching.auto:
        return batching.value
    if device.type == "cuda":
        return "vmap"
    convolves = any(isinstance(module, nn.Conv2d) for module in net.modules())
    return "loop" if convolves else "vmap"


def head_parameter_names(net: nn.Module) -> list[str]:
    """The parameters of the last linear layer: what ANIL adapts."""
    linear = [name for name, module in net.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise UserError("task.anil adapts the backbone's last linear layer, and this backbone has none")
    return [f"{linear[-1]}.{name}" for name, _ in net.get_submodule(linear[-1]).named_parameters()]
