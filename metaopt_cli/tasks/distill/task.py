"""Dataset distillation (Wang et al. 2018): learn a few synthetic images per class such that
a freshly initialised network trained on them for K steps does well on real data; or such that
the gradients they give match those of real data at every step (task.method=gradient_match,
Zhao et al. 2021, gradient_match.py); or such that K steps on them from an expert's parameters
land where the expert got to on real data (task.method=trajectory_match, Cazenavette et al.
2022, trajectory_match.py)."""
import logging
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from torch import nn

from ...config.tasks import DistillMethod
from ...data.splits import SplitData
from ...errors import UserError
from ...estimators.problem import Tensors
from ...estimators.protocol import needs
from ...functional import sample_inits
from ...job_log import FILE_ONLY
from ..knobs import check_positive
from ..protocol import Objective
from .augment import SiameseAugment
from .evaluate import (
    Architecture,
    evaluate_across,
    evaluate_distilled,
    evaluate_distilled_tuned,
    evaluate_random_real,
)
from .gradient_match import sample_gradient_match
from .picture import save_distilled_picture
from .problem import DistillProblem
from .synthetic import SyntheticSet, random_real_images
from .trajectory_match import TrajectoryMatchProblem, TrajectorySampler

log = logging.getLogger(__name__)


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
        method: DistillMethod | str = DistillMethod.unroll,
        net_steps: int = 1,
        dsa: bool = False,
        eval_backbones: list[str] = (),
        experts: str | None = None,
        expert_epochs: int = 2,
        max_start_epoch: int = 2,
        syn_batch: int | None = None,
        backbone_option: Callable[[str], Callable[..., nn.Module]] | None = None,
    ):
        check_positive(horizon=horizon, images_per_class=images_per_class, inner_lr=inner_lr,
                        real_batch=real_batch, eval_models=eval_models, eval_steps=eval_steps, net_steps=net_steps)
        self.method = DistillMethod(method)
        if learn_lr and self.method is DistillMethod.gradient_match:
            # The networks train on the synthetic set detached, so no meta-gradient reaches their lr. The
            # default (true, for the other methods) is no mistake to shout about: the run's log says it.
            log.info("task.learn_lr is ignored by task.method=gradient_match: the networks train at task.inner_lr",
                     extra=FILE_ONLY)
            learn_lr = False
        if eval_models < 2:
            raise UserError(f"task.eval_models={eval_models}: the evaluation reports the mean and std over "
                            "that many fresh networks, and one gives no spread; use at least 2")
        if not eval_lrs or not all(0 < lr < math.inf for lr in eval_lrs):
            raise UserError(f"task.eval_lrs is the grid of learning rates the random-real baseline is tuned on: "
                            f"a non-empty list of positive, finite values, got {list(eval_lrs)}")
        if dsa and self.method is DistillMethod.unroll:
            raise UserError("task.dsa=true: differentiable Siamese augmentation transforms alike the real and the "
                            "synthetic batch that gradient or trajectory matching compares; the unrolled method "
                            "(Wang et al. 2018) trains on the synthetic set as it is. Use task.dsa=false, or "
                            "task.method=gradient_match or trajectory_match")
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
        self.net_steps = net_steps
        self.augment = SiameseAugment() if dsa else None
        # A matched set's tuned evaluation scores the same networks on validation and test.
        self.evaluate_validates = self.method is DistillMethod.gradient_match
        self.make_net = lambda: make_backbone(in_shape=data.in_shape, num_outputs=data.num_classes)
        self.net = self.make_net().to(data.train.x.device)  # the architecture; its own weights are never used
        self.arch = Architecture("backbone", self.make_net, self.net)
        self.eval_archs = [_architecture(name, backbone_option, data) for name in dict.fromkeys(eval_backbones)]
        labels = torch.arange(data.num_classes, device=data.train.x.device).repeat_interleave(images_per_class)
        self.synthetic = SyntheticSet(labels, inner_lr, learn_labels, learn_lr)
        self.trajectories = None
        # The steps a fresh network takes on the distilled set at evaluation: the K of meta-training
        # for unroll; for trajectory matching, whose K steps start from an expert, as many as the
        # random-real baseline takes (MTT too trains fresh networks far longer than K).
        self.distilled_steps = horizon
        if self.method is DistillMethod.trajectory_match:
            self.trajectories = TrajectorySampler(data, self.net, experts, expert_epochs, max_start_epoch, syn_batch)
            self.distilled_steps = eval_steps

    @staticmethod
    def check_estimator(task: DictConfig, estimator: DictConfig) -> None:
        """Settings the estimator cannot carry out. Checkpointed backprop recomputes the inner steps backwards through the state: that saves
        nothing where the state never depends on θ, as in gradient matching, and it needs a state of
        floats, where gradient matching's also carries each matching's real-batch indices."""
        if DistillMethod(task.method) is DistillMethod.gradient_match and estimator.get("checkpoint", False):
            raise UserError("estimator.checkpoint=true saves nothing under task.method=gradient_match, whose networks "
                            "train on the synthetic set detached: set estimator.checkpoint=false, or use "
                            "estimator=tbptt estimator.truncation=1, which gives the same gradient holding one "
                            "matching's graph")
        if task.dsa and needs(get_class(estimator._target_), "forward_mode"):
            raise UserError("task.dsa=true resamples images with grid_sample, which torch cannot differentiate in "
                            "forward mode: use estimator=backprop, tbptt, es or pes, or task.dsa=false")

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        real = random_real_images(self.data, self.synthetic.labels, generator)
        images = real if self.init == "real" else torch.randn(real.shape, generator=generator, device=real.device)
        return self.synthetic.init_meta_params(images, self.data.num_classes)

    def sample(self, generator: torch.Generator, count: int) -> DistillProblem | TrajectoryMatchProblem:
        """`count` fresh networks, trained in parallel, scored on one batch of real images; with
        trajectory matching, `count` students started from experts."""
        if self.method is DistillMethod.gradient_match:
            return sample_gradient_match(self, generator, count)
        if self.trajectories is not None:
            return self.trajectories.sample(self.synthetic, self.horizon, count, generator, self.augment)
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
        return self._evaluate_distilled(meta_params, generator, "val")

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        return {
            **self._evaluate_distilled(meta_params, generator, "test"),
            **evaluate_random_real(self, generator),
            **evaluate_across(self, meta_params, generator),
        }

    def _evaluate_distilled(self, meta_params: Tensors, generator: torch.Generator, split: str) -> dict[str, float]:
        """Unrolled sets are scored by the schedule they were learned for, trajectory-matched ones
        at their learned lr for eval_steps (as MTT evaluates); gradient-matched ones, which learn
        no lr, by networks trained as the random-real baseline is."""
        if self.method is DistillMethod.gradient_match:
            return evaluate_distilled_tuned(self, meta_params, generator, split)
        return evaluate_distilled(self, meta_params, generator, split)

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        path = (out_dir or run_dir) / "distilled.png"
        save_distilled_picture(meta_params["images"], self.synthetic.labels, path)
        return [path]


def _architecture(name: str, backbone_option, data: SplitData) -> Architecture:
    """backbone=<name> at its defaults, for the data; built once here, so that a name that does
    not exist or a network that cannot take the images stops the run at start-up."""
    try:
        make_net = partial(backbone_option(name), in_shape=data.in_shape, num_outputs=data.num_classes)
        net = make_net()
    except UserError as error:  # which knob asked for it: the run's own backbone is fine
        raise UserError(f"task.eval_backbones: {error}") from None
    return Architecture(name, make_net, net.to(data.train.x.device))
