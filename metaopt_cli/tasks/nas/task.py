"""Differentiable architecture search (DARTS, Liu et al. 2019): θ = the α logits of each cell
kind's edges over their candidate operations; the inner loop trains the supernet's weights w
on the training split with every edge mixing its operations by softmax(α); the meta-objective
is the validation loss. DARTS's second-order step is estimator=tbptt with truncation 1 online,
its first-order variant task.first_order=true, iDARTS estimator=implicit."""
from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig

from ...data.splits import SplitData
from ...errors import UserError
from ...estimators.problem import Tensors
from ...estimators.protocol import needs
from ...functional import minibatches, sample_inits
from ..protocol import Objective
from .evaluate import REPORTED, evaluate_search, validate_search
from .network import SearchNetwork
from .picture import save_search_pictures
from .problem import NASProblem, arch_weights
from .space import search_space

ALPHA_SCALE = 1e-3  # DARTS initialises α as 1e-3 × N(0, 1): every operation weighted about equally


class NAS:
    default_estimator = "tbptt"
    data_kinds = ("classification",)
    inner_step_knob = "task.lr"
    reported_metrics = REPORTED
    default_objective = Objective("searched_val_acc", "maximize")
    evaluate_validates = True  # its retrained cell is scored on validation and test at once

    def __init__(
        self,
        data: SplitData,
        device: torch.device,
        space: str,
        operations: list[str] | None,
        cells: int,
        nodes: int,
        channels: int,
        horizon: int,
        lr: float,
        momentum: float,
        weight_decay: float,
        batch_size: int,
        val_batch: int,
        first_order: bool,
        warm_start: bool,  # carried out by the estimator's online mode (check_estimator)
        top_k: int,
        log_alphas: bool,
        eval_steps: int,
        eval_seeds: int,
        eval_lr: float,
        random_archs: int,
    ):
        self.space = search_space(space, nodes, operations, top_k)
        for name, value in dict(cells=cells, channels=channels, horizon=horizon, batch_size=batch_size,
                                val_batch=val_batch, eval_steps=eval_steps, eval_seeds=eval_seeds,
                                random_archs=random_archs).items():
            if value < 1:
                raise UserError(f"task.{name} must be at least 1, got {value}")
        self.data, self.device = data, device
        self.cells, self.channels, self.horizon = cells, channels, horizon
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.batch_size, self.val_batch, self.first_order = batch_size, val_batch, first_order
        self.top_k, self.log_alphas = top_k, log_alphas
        self.eval_steps, self.eval_seeds, self.eval_lr = eval_steps, eval_seeds, eval_lr
        self.random_archs = random_archs
        self.net = self.make_net().to(device)  # the architecture; its own weights are never used

    @staticmethod
    def check_estimator(task: DictConfig, estimator: DictConfig) -> None:
        """task.warm_start is the estimator's online mode: the weights w persist across meta-steps
        exactly when an online estimator (tbptt, pes) carries its inner run over (restarting
        from fresh w every task.horizon steps). It follows estimator.online unless set."""
        online = bool(estimator.get("online", False))
        if task.warm_start and not online:
            raise UserError("task.warm_start=true keeps the weights across meta-steps, which is an online estimator's "
                            "inner run: use estimator=tbptt or pes with estimator.online=true (task.warm_start then "
                            "follows it), or task.warm_start=false")
        if online and not task.warm_start:
            raise UserError("estimator.online=true carries the weights across meta-steps, which is "
                            "task.warm_start=true: drop task.warm_start=false, or set estimator.online=false")
        if task.first_order and needs(get_class(estimator._target_), "inner_objective"):
            raise UserError("task.first_order=true drops the path through the inner steps, which implicit "
                            "differentiation never takes (it differentiates the inner optimum): "
                            "set task.first_order=false")

    def make_net(self) -> SearchNetwork:
        return SearchNetwork(self.space, self.data.in_shape, self.data.num_classes, self.cells, self.channels)

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        return {f"alpha_{kind}": ALPHA_SCALE * torch.randn(self.space.alpha_shape, generator=generator,
                                                           device=self.device)
                for kind in self.space.cell_kinds}

    def sample(self, generator: torch.Generator, count: int) -> NASProblem:
        """`count` supernets from fresh initialisations, each on minibatches of its own (drawn
        with replacement), every step scored on a validation minibatch of its own; the inner
        objective (implicit) on a training minibatch of the validation one's size."""
        train, val = self.data.train, self.data.val
        batches = minibatches(len(train.y), self.horizon, count, self.batch_size, generator)
        val_batches = minibatches(len(val.y), self.horizon, 1, self.val_batch, generator)[:, 0]
        inner = torch.randperm(len(train.y), generator=generator, device=self.device)[:self.val_batch]
        return NASProblem(self.net, sample_inits(self.make_net, count, generator, self.device), train.x, train.y,
                          batches, val.x, val.y, val_batches, train.x[inner], train.y[inner], self.lr,
                          self.momentum, self.weight_decay, self.first_order)

    def log_values(self, meta_params: Tensors) -> dict[str, float]:
        """Each edge's softmax operation weights, `alpha_<cell>_<edge>_<op>` (what alphas.png
        draws over meta-steps), where task.log_alphas asks for them."""
        if not self.log_alphas:
            return {}
        values = {}
        for kind, weights in zip(self.space.cell_kinds, arch_weights(meta_params)):
            for edge, row in enumerate(weights.tolist()):
                values.update({f"alpha_{kind}_{edge}_{op}": value for op, value in zip(self.space.operations, row)})
        return values

    def validate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        return validate_search(self, meta_params, generator)

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        return evaluate_search(self, meta_params, generator)

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        return save_search_pictures(self, meta_params, run_dir, out_dir or run_dir)
