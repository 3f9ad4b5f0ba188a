"""Hyperparameter optimisation by meta-gradients (Maclaurin et al. 2015; Lorraine et al. 2020;
the PES paper's learning-rate schedules): learn the hyperparameters of a network's training
run, SGD with momentum on the training split for K steps, for its validation loss."""
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ...data.splits import SplitData
from ...errors import UserError
from ...estimators.problem import Tensors
from ...functional import minibatches, sample_inits
from ..protocol import Objective, OnlyWith
from .evaluate import REPORTED, evaluate_hyperparams
from .hyperparams import Hyperparams
from .picture import save_schedule_picture
from .problem import OBJECTIVES, HPOProblem


class HPO:
    default_estimator = "tbptt"
    data_kinds = ("classification",)
    inner_step_knob = "task.lr"
    no_inner_objective = OnlyWith("hyperparams", ("weight_decay",), "implicit differentiation sees only hyperparameters "
                                  "of the inner objective (weight_decay), not {others}, which act on the optimiser's path")
    reported_metrics = REPORTED
    default_objective = Objective("learned_val_loss", "minimize")

    def __init__(
        self,
        data: SplitData,
        make_backbone: Callable[..., nn.Module],
        device: torch.device,
        horizon: int,
        hyperparams: list[str],
        schedule: str,
        decay_steps: float,
        lr: float,
        decay: float,
        momentum: float,
        weight_decay: float,
        per_layer_weight_decay: bool,
        batch_size: int,
        val_batch: int,
        objective: str,
        eval_seeds: int,
        random_search_trials: int,
    ):
        for name, value in dict(horizon=horizon, batch_size=batch_size, val_batch=val_batch, eval_seeds=eval_seeds,
                                random_search_trials=random_search_trials).items():
            if value < 1:
                raise UserError(f"task.{name} must be at least 1, got {value}")
        if eval_seeds < 2:
            raise UserError(f"task.eval_seeds={eval_seeds}: the evaluation reports the mean and std over that many "
                            "retrained networks, and one gives no spread; use at least 2")
        if objective not in OBJECTIVES:
            raise UserError(f"task.objective must be one of {', '.join(OBJECTIVES)}, got '{objective}'")
        self.data, self.device, self.objective = data, device, objective
        self.batch_size, self.val_batch = batch_size, val_batch
        self.eval_seeds, self.random_search_trials = eval_seeds, random_search_trials
        self.make_net = lambda: make_backbone(in_shape=data.in_shape, num_outputs=data.num_classes)
        self.net = self.make_net().to(device)  # the architecture; its own weights are never used
        decayed = tuple(name for name, _ in self.net.named_parameters()) if per_layer_weight_decay else ()
        self.hyperparams = Hyperparams(tuple(hyperparams), schedule, horizon, decay_steps, lr, decay, momentum,
                                       weight_decay, decayed)
        self.last_results: dict[str, float] = {}  # the last evaluation's, which schedule.png draws
        self.last_scored: dict[str, Tensors] = {}

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        return self.hyperparams.init_meta_params(self.device)

    def sample(self, generator: torch.Generator, count: int) -> HPOProblem:
        """`count` training runs from fresh initialisations, each with its own minibatches (drawn
        with replacement; the whole split when task.batch_size covers it), scored on a batch of
        the validation split."""
        train, scored = self.data.train, self.data.val
        batches = minibatches(len(train.y), self.hyperparams.horizon, count, self.batch_size, generator)
        size = min(self.val_batch, len(scored.y))
        chosen = torch.randperm(len(scored.y), generator=generator, device=self.device)[:size]
        return HPOProblem(self.net, self.hyperparams, sample_inits(self.make_net, count, generator, self.device),
                          train.x, train.y, batches, scored.x[chosen], scored.y[chosen], self.objective)

    def log_values(self, meta_params: Tensors) -> dict[str, float]:
        return self.hyperparams.readable(self.hyperparams.complete(meta_params))

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        self.last_results, self.last_scored = evaluate_hyperparams(self, meta_params, generator)
        return self.last_results

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        path = (out_dir or run_dir) / "schedule.png"
        # The searches' schedules and every retrained score come from the last evaluation.
        scored = {name: self.hyperparams.complete(setting) for name, setting in
                  {**self.last_scored, "learned": meta_params}.items()}
        save_schedule_picture(self.hyperparams, scored, self.last_results, run_dir / "metrics.jsonl", path)
        return [path]
