"""Trajectory matching (Cazenavette et al., "Dataset Distillation by Matching Training
Trajectories", CVPR 2022): a student network starts at an expert's parameters θ*_t (epoch t of
its training on real data), takes N SGD steps on the synthetic set at the learned inner lr, and
the meta-loss is how far it lands from the expert's parameters M epochs later, relative to how far
the expert itself moved: ‖θ_N − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖², over all parameters flattened.
N is task.horizon (MTT's syn_steps), M task.expert_epochs."""
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.func import grad, vmap

from ...data.splits import SplitData
from ...errors import UserError
from ...estimators.problem import Tensors
from ...functional import loss_fn, minibatches
from .augment import SiameseAugment, augment
from .experts import Experts, default_folder, load_experts, make_command, run_choices
from .synthetic import SyntheticSet


@dataclass
class TrajectoryMatchProblem:
    net: nn.Module
    synthetic: SyntheticSet
    start_params: Tensors  # each run's expert at its epoch t, stacked over runs
    target_params: Tensors  # the same expert at epoch t + M
    batches: torch.Tensor  # int64 [horizon, runs, syn_batch]: the synthetic images of each run's steps
    horizon: int
    # Differentiable Siamese augmentation (augment.py) of each step's synthetic minibatch, as MTT
    # trains its students: [horizon, runs, …] draws; empty without.
    augmentations: Tensors

    @property
    def objective_steps(self) -> range:
        return range(self.horizon, self.horizon + 1)  # the distance after the last step only

    @property
    def meta_batch(self) -> int:
        return len(self.batches[0])

    def select(self, runs: range) -> "TrajectoryMatchProblem":
        rows = slice(runs.start, runs.stop)
        return replace(self, start_params={name: value[rows] for name, value in self.start_params.items()},
                       target_params={name: value[rows] for name, value in self.target_params.items()},
                       batches=self.batches[:, rows],
                       augmentations={key: value[:, rows] for key, value in self.augmentations.items()})

    def init(self, meta_params: Tensors) -> Tensors:
        return dict(self.start_params)

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        images, targets, lr = self.synthetic.unpack(meta_params)
        loss = loss_fn(self.net)

        def run_grad(params: Tensors, x: torch.Tensor, y: torch.Tensor, draw: Tensors) -> Tensors:
            return grad(lambda p: loss(p, augment(x, draw) if draw else x, y))(params)

        batch = self.batches[t]
        draws = {key: value[t] for key, value in self.augmentations.items()}
        grads = vmap(run_grad)(state, images[batch], targets[batch], draws)
        return {name: value - lr * grads[name] for name, value in state.items()}

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        """Each run's normalised distance to its target, averaged over runs."""
        return (_distances(state, self.target_params) / _distances(self.start_params, self.target_params)).mean()


def _distances(params: Tensors, targets: Tensors) -> torch.Tensor:
    """Each run's squared distance over all its parameters: a vector over runs."""
    return sum((params[name] - target).pow(2).flatten(1).sum(1) for name, target in targets.items())


class TrajectorySampler:
    """Draws trajectory-matching problems from the experts stored for the run's data and backbone,
    read when the first problem is drawn (an evaluation needs none)."""

    def __init__(self, data: SplitData, net: nn.Module, folder: str | None, expert_epochs: int, max_start_epoch: int,
                 syn_batch: int | None):
        for name, value in {"expert_epochs": expert_epochs, "max_start_epoch": max_start_epoch}.items():
            if value < 1:
                raise UserError(f"task.{name} must be at least 1, got {value}")
        if syn_batch is not None and syn_batch < 1:
            raise UserError(f"task.syn_batch must be at least 1 (or null: all the synthetic images), got {syn_batch}")
        self.data, self.net, self.folder = data, net, folder
        self.expert_epochs, self.max_start_epoch, self.syn_batch = expert_epochs, max_start_epoch, syn_batch
        self._experts: Experts | None = None

    def sample(self, synthetic: SyntheticSet, horizon: int, count: int, generator: torch.Generator,
               augmenter: SiameseAugment | None) -> TrajectoryMatchProblem:
        experts = self.experts()
        device = generator.device
        which = torch.randint(experts.count, (count,), generator=generator, device=device)
        start = torch.randint(self.max_start_epoch, (count,), generator=generator, device=device)
        size = len(synthetic.labels)
        batches = minibatches(size, horizon, count, min(self.syn_batch or size, size), generator)
        trajectories = experts.trajectories
        augmentations = {}
        if augmenter is not None:
            draws = augmenter.draw(generator, horizon * count, device, self.data.in_shape[1:])
            augmentations = {key: value.view(horizon, count, *value.shape[1:]) for key, value in draws.items()}
        return TrajectoryMatchProblem(
            self.net, synthetic,
            {name: value[which, start] for name, value in trajectories.items()},
            {name: value[which, start + self.expert_epochs] for name, value in trajectories.items()},
            batches, horizon, augmentations)

    def experts(self) -> Experts:
        if self._experts is None:
            choices = run_choices()
            if not self.folder and choices is None:
                raise UserError("task.experts=null finds the experts from the data and backbone options of a metaopt "
                                "command: pass task.experts=<folder of `metaopt experts`>")
            folder = Path(self.folder) if self.folder else default_folder(choices)
            x = self.data.train.x
            experts = load_experts(folder, make_command(choices, folder), x.device, x.dtype)
            self._check(experts, folder, choices)
            self._experts = experts
        return self._experts

    def _check(self, experts: Experts, folder: Path, choices: dict | None) -> None:
        manifest, data = experts.manifest, self.data
        # Other experts go to their own folder, never over the ones named here.
        fresh = make_command(choices, default_folder(choices) if choices else Path("<folder>"))
        make = f"`{fresh}`" + (" and drop task.experts" if self.folder else "")
        if (manifest["dataset"], tuple(manifest["image_shape"]), manifest["classes"]) != \
                (data.name, data.in_shape, data.num_classes):
            raise UserError(f"the experts in {folder} learned {manifest['dataset']} ({manifest['classes']} classes of "
                            f"{'×'.join(map(str, manifest['image_shape']))} images), and this run distills "
                            f"{data.name} ({data.num_classes} classes of {'×'.join(map(str, data.in_shape))}): "
                            f"make experts for this data with {make}, or pass task.experts=<their folder>")
        wanted = {name: list(value.shape) for name, value in self.net.named_parameters()}
        if manifest["params"] != wanted:
            raise UserError(f"the experts in {folder} are {manifest['backbone']} networks whose parameters do not "
                            f"match this run's backbone: make experts for it with {make}, or pass "
                            "task.experts=<their folder>")
        last = self.max_start_epoch - 1 + self.expert_epochs
        if last > experts.epochs:
            raise UserError(f"task.max_start_epoch={self.max_start_epoch} and task.expert_epochs={self.expert_epochs} "
                            f"match up to epoch {last}, and the experts in {folder} store epochs 0 to "
                            f"{experts.epochs}: lower them, or train longer experts with "
                            f"`{make_command(choices, folder)} experts.epochs={last}`")
