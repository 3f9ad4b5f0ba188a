"""Prototypical Networks (Snell et al. 2017): each class is the mean of its support
embeddings, and a query is classified by softmax over negative squared distances to them.
The embedding network is θ; there is no inner loop (K = 0)."""
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from ...data.episodes import Episodes
from ...errors import UserError
from ...estimators.problem import Tensors
from ...functional import sample_inits
from ...progress import progress
from .evaluate import CLASSIFICATION_METRICS, VAL_ACC
from .losses import check_test_episodes, mean_ci95
from .source import EpisodeSource

CHUNK = 50  # test episodes embedded at once


class ProtoNet:
    default_estimator = "backprop"
    data_kinds = ("classification", "few_shot")
    no_inner_loop = "Prototypical Networks have no inner loop to truncate"
    no_inner_optimum = "Prototypical Networks have no inner loop, so no inner optimum"
    reported_metrics = CLASSIFICATION_METRICS
    default_objective = VAL_ACC

    def __init__(self, data, make_backbone: Callable[..., nn.Module], device: torch.device, ways: int, shots: int,
                 queries: int, test_episodes: int, split_seed: int):
        check_test_episodes(test_episodes)
        self.source = EpisodeSource.of(data, ways, shots, queries, split_seed)
        if not self.source.classification:
            raise UserError("protonet classifies, and this data is a regression: use data=digits, omniglot, "
                            "cifar_fs or miniimagenet (or task=maml)")
        # num_outputs=None: the backbone without its classifier head, an embedding.
        self.make_net = lambda: make_backbone(in_shape=self.source.in_shape, num_outputs=None)
        self.net, self.device, self.test_episodes = self.make_net().to(device), device, test_episodes

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        return {name: value[0] for name, value in sample_inits(self.make_net, 1, generator, self.device).items()}

    def sample(self, generator: torch.Generator, count: int) -> "ProtoProblem":
        return ProtoProblem(self.net, self.source.sample("train", count, generator), self.source.ways)

    def validate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        """Query accuracy on meta-val episodes: what the run is judged by while it trains."""
        return self._accuracy(meta_params, generator, "val")

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        """Query accuracy on meta-test episodes: the final report."""
        return self._accuracy(meta_params, generator, "test")

    def _accuracy(self, meta_params: Tensors, generator: torch.Generator, split: str) -> dict[str, float]:
        accuracies = []
        with torch.no_grad():
            for start in progress(range(0, self.test_episodes, CHUNK), f"meta-{split}: {CHUNK} episodes at a time"):
                episodes = self.source.sample(split, min(CHUNK, self.test_episodes - start), generator)
                problem = ProtoProblem(self.net, episodes, self.source.ways)
                logits = problem.query_logits(meta_params)
                accuracies.append((logits.argmax(-1) == episodes.query_y).float().mean(-1))
        mean, ci = mean_ci95(torch.cat(accuracies))
        return {f"{split}_acc": mean, f"{split}_acc_ci95": ci}

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        return []


@dataclass
class ProtoProblem:
    net: nn.Module
    episodes: Episodes
    ways: int
    horizon: int = 0

    @property
    def objective_steps(self) -> range:
        return range(0, 1)  # the loss of θ itself: there is no inner loop

    @property
    def meta_batch(self) -> int:
        return len(self.episodes.support_y)

    def select(self, runs: range) -> "ProtoProblem":
        """The episodes `runs` alone."""
        return replace(self, episodes=self.episodes.select(runs))

    def init(self, meta_params: Tensors) -> Tensors:
        return {}

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        raise AssertionError("Prototypical Networks have no inner steps")

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        logits = self.query_logits(meta_params)
        return F.cross_entropy(logits.flatten(0, 1), self.episodes.query_y.flatten())

    def query_logits(self, meta_params: Tensors) -> torch.Tensor:
        """[tasks, queries, ways]: minus the squared distance of each query to each prototype."""

        def per_task(support_x, support_y, query_x):
            embed = lambda x: functional_call(self.net, meta_params, (x,)).flatten(1)  # noqa: E731
            one_hot = F.one_hot(support_y, self.ways).to(support_x.dtype)
            prototypes = (one_hot.T @ embed(support_x)) / one_hot.sum(0).unsqueeze(1)
            return -squared_distances(embed(query_x), prototypes)

        episodes = self.episodes
        return vmap(per_task)(episodes.support_x, episodes.support_y, episodes.query_x)


def squared_distances(queries: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """[Q, N]: ‖q − p‖² of every query to every prototype. Written out rather than
    torch.cdist(…) ** 2, which has no forward-mode rule (torch.func.jvp fails on it); the
    difference squared is also exactly non-negative, unlike the expanded ‖q‖² − 2q·p + ‖p‖²."""
    return (queries.unsqueeze(1) - prototypes.unsqueeze(0)).square().sum(-1)
