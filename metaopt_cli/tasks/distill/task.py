"""Dataset distillation (Wang et al. 2018): learn a few synthetic images per class such that
a freshly initialised network trained on them for K steps does well on real data; or, with
task.method=trajectory_match, such that K steps on them from an expert's parameters land where
the expert got to on real data (Cazenavette et al. 2022, trajectory_match.py)."""
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ...config.tasks import DistillMethod
from ...data.splits import SplitData
from ...errors import UserError
from ...estimators.problem import Tensors
from ...functional import sample_inits
from ..protocol import Objective
from .evaluate import evaluate_distilled, evaluate_random_real
from .picture import save_distilled_picture
from .problem import DistillProblem
from .synthetic import SyntheticSet, random_real_images
from .trajectory_match import TrajectoryMatchProblem, TrajectorySampler


class Distill:
    default_estimator = "tbptt"
    data_kinds = ("classification",)
    inner_step_knob = "task.inner_lr"
    no_inner_optimum = ("distillation trains each fresh network for a fixed K steps and stops far from any inner "
                        "optimum, so the implicit function theorem does not apply")
    reported_metrics = ("distilled_val_acc", "distilled_val_acc_std", "distilled_test_acc", "distilled_test_acc_std",
                        "random_real_test_acc", "random_real_test_acc_std", "random_real_lr")
    # Networks trained on the distilled set, scored on the validation split: a sweeper never sees the test's.
    default_objective = Objective("distilled_val_acc", "maximize")

    def __init__(
        self,
        data: SplitData,
        make_backbone: Callable[..., nn.Module],
        horizon: int,
        images_per_class: int,
        learn_labels: bool,
        learn_lr: bool,
        inner_lr: float,
        init: str,
        real_batch: int,
        eval_models: int,
        eval_steps: int,
        eval_lrs: list[float],
        method: str = "unroll",
        experts: str | None = None,
        expert_epochs: int = 2,
        max_start_epoch: int = 2,
        syn_batch: int | None = None,
    ):
        _check_positive(horizon=horizon, images_per_class=images_per_class, inner_lr=inner_lr,
                        real_batch=real_batch, eval_models=eval_models, eval_steps=eval_steps)
        if eval_models < 2:
            raise UserError(f"task.eval_models={eval_models}: the evaluation reports the mean and std over "
                            "that many fresh networks, and one gives no spread; use at least 2")
        if not eval_lrs or not all(0 < lr < math.inf for lr in eval_lrs):
            raise UserError(f"task.eval_lrs is the grid of learning rates the random-real baseline is tuned on: "
                            f"a non-empty list of positive, finite values, got {list(eval_lrs)}")
        if init not in ("real", "noise"):
            raise UserError(f"task.init must be real or noise, got '{init}'")
        smallest = int(torch.bincount(data.train.y, minlength=data.num_classes).min())
        if images_per_class > smallest:
            raise UserError(
                f"task.images_per_class={images_per_class} exceeds the {smallest} training images of the "
                f"smallest class in {data.name}: choose at most {smallest}"
            )
        self.data, self.horizon, self.init = data, horizon, init
        self.real_batch, self.eval_models, self.eval_steps, self.eval_lrs = real_batch, eval_models, eval_steps, eval_lrs
        self.make_net = lambda: make_backbone(in_shape=data.in_shape, num_outputs=data.num_classes)
        self.net = self.make_net().to(data.train.x.device)  # the architecture; its own weights are never used
        labels = torch.arange(data.num_classes, device=data.train.x.device).repeat_interleave(images_per_class)
        self.synthetic = SyntheticSet(labels, inner_lr, learn_labels, learn_lr)
        self.trajectories = None
        # The steps a fresh network takes on the distilled set at evaluation: the K of meta-training
        # for unroll; for trajectory matching, whose K steps start from an expert, as many as the
        # random-real baseline takes (MTT too trains fresh networks far longer than K).
        self.distilled_steps = horizon
        if DistillMethod(method) is DistillMethod.trajectory_match:
            self.trajectories = TrajectorySampler(data, self.net, experts, expert_epochs, max_start_epoch, syn_batch)
            self.distilled_steps = eval_steps

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        real = random_real_images(self.data, self.synthetic.labels, generator)
        images = real if self.init == "real" else torch.randn(real.shape, generator=generator, device=real.device)
        return self.synthetic.init_meta_params(images, self.data.num_classes)

    def sample(self, generator: torch.Generator, count: int) -> DistillProblem | TrajectoryMatchProblem:
        """`count` fresh networks, trained in parallel, scored on one batch of real images; with
        trajectory matching, `count` students started from experts."""
        if self.trajectories is not None:
            return self.trajectories.sample(self.synthetic, self.horizon, count, generator)
        train = self.data.train
        device = train.x.device
        batch = torch.randint(len(train.y), (min(self.real_batch, len(train.y)),), generator=generator, device=device)
        init_params = sample_inits(self.make_net, count, generator, device)
        return DistillProblem(self.net, self.synthetic, init_params, train.x[batch], train.y[batch], self.horizon)

    def log_values(self, meta_params: Tensors) -> dict[str, float]:
        """The learned inner learning rate, as the lr itself (θ holds its log)."""
        return {"inner_lr": meta_params["log_lr"].exp().item()} if self.synthetic.learn_lr else {}

    def validate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        """The distilled set on the validation split: what the run is judged by while it trains."""
        return evaluate_distilled(self, meta_params, generator, "val")

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        return {
            **evaluate_distilled(self, meta_params, generator, "test"),
            **evaluate_random_real(self, generator),
        }

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        path = (out_dir or run_dir) / "distilled.png"
        save_distilled_picture(meta_params["images"], self.synthetic.labels, path)
        return [path]


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not 0 < value < math.inf:
            raise UserError(f"task.{name} must be positive and finite, got {value}")
