"""Learned optimizers (Andrychowicz et al. 2016; Metz et al. 2019, 2020): meta-learn the update
rule that trains a backbone, on a distribution of inner problems (fresh initialisations and
minibatch orders), for the loss along the whole training run."""
import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ...data.splits import SplitData
from ...errors import UserError
from ...estimators.problem import Tensors
from ...functional import minibatches, sample_inits
from ...write_faults import replace_file
from ..protocol import Objective
from .rule import RULES
from .meta_test import meta_test
from .picture import save_meta_test_picture
from .problem import LOptProblem
from .self_train import SelfTraining

SCORED = ("train", "val")


class LearnedOpt:
    default_estimator = "tbptt"
    data_kinds = ("classification",)
    inner_step_knob = "task.step_mult"
    no_inner_optimum = ("a learned optimizer is judged along its whole training run, not at an inner optimum, so the "
                        "implicit function theorem does not apply")
    reported_metrics = ("lopt_final_loss", "adam_final_loss", "sgd_final_loss", "adam_best_lr", "sgd_best_lr",
                        "lopt_steps_to_adam", "sgd_steps_to_adam", "test_horizon")
    # On task.scored's split (train or val) of held-out networks: never the test split.
    default_objective = Objective("lopt_final_loss", "minimize")

    def __init__(
        self,
        data: SplitData,
        make_backbone: Callable[..., nn.Module],
        device: torch.device,
        horizon: int,
        optimizer: str,
        hidden: int,
        batch_size: int,
        scored: str,
        scored_batch_size: int,
        step_mult: float,
        exp_mult: float,
        test_horizon: int,
        test_seeds: int,
        adam_lrs: list[float],
        sgd_lrs: list[float],
        self_train: bool,
        self_train_warmup: int,
        self_train_step_mult: float,
    ):
        for name, value in dict(horizon=horizon, hidden=hidden, batch_size=batch_size, test_horizon=test_horizon,
                                test_seeds=test_seeds, scored_batch_size=scored_batch_size).items():
            if value < 1:
                raise UserError(f"task.{name} must be at least 1, got {value}")
        if optimizer not in RULES:
            raise UserError(f"task.optimizer must be one of {', '.join(RULES)}, got '{optimizer}'")
        if scored not in SCORED:
            raise UserError(f"task.scored must be one of {', '.join(SCORED)}, got '{scored}'")
        if not all(0 < value < math.inf for value in (step_mult, exp_mult, self_train_step_mult)):
            raise UserError(f"task.step_mult, task.exp_mult and task.self_train_step_mult must be positive and "
                            f"finite, got {step_mult}, {exp_mult} and {self_train_step_mult}")
        if self_train_warmup < 0:
            raise UserError(f"task.self_train_warmup counts outer steps before the rule trains itself: it must be 0 "
                            f"or more, got {self_train_warmup}")
        if not adam_lrs or not sgd_lrs or not all(0 < lr < math.inf for lr in (*adam_lrs, *sgd_lrs)):
            raise UserError(f"task.adam_lrs and task.sgd_lrs must be non-empty lists of positive, finite learning "
                            f"rates, got {list(adam_lrs)} and {list(sgd_lrs)}")
        self.data, self.device, self.horizon = data, device, horizon
        self.batch_size, self.scored, self.scored_batch_size = batch_size, scored, scored_batch_size
        self.rule = RULES[optimizer](hidden, step_mult, exp_mult)
        self.test_horizon, self.test_seeds = test_horizon, test_seeds
        self.baseline_lrs = {"adam": list(adam_lrs), "sgd": list(sgd_lrs)}
        self.self_train_warmup = self_train_warmup if self_train else None
        self.self_train_step_mult = self_train_step_mult
        self.make_net = lambda: make_backbone(in_shape=data.in_shape, num_outputs=data.num_classes)
        self.net = self.make_net().to(device)  # the architecture; its own weights are never used
        self.last_curves: dict | None = None

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        return self.rule.init(generator, self.device)

    def outer_optimizer(self, meta_params: Tensors, optimizer: torch.optim.Optimizer):
        """Under task.self_train, the rule takes over its own meta-training after the warm-up."""
        if self.self_train_warmup is None:
            return optimizer
        return SelfTraining(meta_params, optimizer, self.rule, self.self_train_warmup, self.self_train_step_mult)

    def scored_batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        split = getattr(self.data, self.scored)
        chosen = torch.randperm(len(split.y), generator=generator, device=self.device)[:self.scored_batch_size]
        return split.x[chosen], split.y[chosen]

    def sample(self, generator: torch.Generator, count: int) -> LOptProblem:
        """`count` fresh networks, each with its own minibatch order."""
        train = self.data.train
        batches = minibatches(len(train.y), self.horizon, count, self.batch_size, generator)
        return LOptProblem(self.net, sample_inits(self.make_net, count, generator, self.device), train.x, train.y,
                           batches, *self.scored_batch(generator), self.horizon, self.rule)

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        results, self.last_curves = meta_test(self, meta_params, generator)
        return results

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        """meta_test.png from the last evaluation's curves (kept as JSON beside it)."""
        out_dir = out_dir or run_dir
        replace_file(out_dir / "meta_test.json", lambda file: json.dump(self.last_curves, file))
        path = out_dir / "meta_test.png"
        save_meta_test_picture(self.last_curves, self.horizon, path)
        return [path]
