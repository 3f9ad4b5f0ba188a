"""Prototypical Networks (Snell et al. 2017): each class is the mean of its support
embeddings, and a query is classified by softmax over negative squared distances to them.
The embedding network is θ; there is no inner loop (K = 0).

`task.head` swaps the prototypes for another classifier fitted to the support embeddings
(heads/): ridge regression (R2D2) or MetaOptNet's multi-class SVM, whose own meta-parameters
(an output scale, a regulariser) join θ under `head.*`."""
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from ...config.tasks import Head
from ...data.episodes import Episodes
from ...errors import UserError
from ...estimators.problem import Tensors
from ...functional import sample_inits
from ...progress import progress
from ..protocol import OnlyWith
from .evaluate import CLASSIFICATION_METRICS, VAL_ACC
from .heads import HEADS, PREFIX, FewShotHead
from .losses import check_test_episodes, mean_ci95
from .source import EpisodeSource

CHUNK = 50  # test episodes embedded at once


class ProtoNet:
    default_estimator = "backprop"
    data_kinds = ("classification", "few_shot")
    no_inner_loop = "Prototypical Networks have no inner loop to truncate"
    no_inner_optimum = "Prototypical Networks have no inner loop, so no inner optimum"
    # The SVM head's backward pass is implicit differentiation written as an autograd.Function with
    # no forward-mode rule, so no tangent can be pushed through its solver.
    no_forward_mode = OnlyWith("head", ("proto", "ridge"), "task.head={others} differentiates its QP solver "
                               "implicitly, in reverse mode only, so forward-mode tangents cannot pass it", single=True)
    reported_metrics = CLASSIFICATION_METRICS
    default_objective = VAL_ACC

    def __init__(self, data, make_backbone: Callable[..., nn.Module], device: torch.device, ways: int, shots: int,
                 queries: int, test_episodes: int, split_seed: int, head: Head | str, head_scale: float,
                 ridge_lambda: float, learn_ridge_lambda: bool, svm_c: float, svm_iterations: int,
                 label_smoothing: float, train_ways: int | None = None, train_shots: int | None = None,
                 train_queries: int | None = None):
        check_test_episodes(test_episodes)
        if not 0 <= label_smoothing < 1:
            raise UserError(f"task.label_smoothing is the probability moved off the true class and must be in [0, 1), "
                            f"got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.head = HEADS[Head(head)](head_scale=head_scale, ridge_lambda=ridge_lambda,
                                      learn_ridge_lambda=learn_ridge_lambda, svm_c=svm_c, svm_iterations=svm_iterations)
        train = (train_ways, train_shots, train_queries)
        train_shape = None if train == (None, None, None) else tuple(
            value if value is not None else test for value, test in zip(train, (ways, shots, queries)))
        self.source = EpisodeSource.of(data, ways, shots, queries, split_seed, train_shape)
        if not self.source.classification:
            raise UserError("protonet classifies, and this data is a regression: use data=digits, omniglot, "
                            "cifar_fs or miniimagenet (or task=maml)")
        # num_outputs=None: the backbone without its classifier head, an embedding.
        self.make_net = lambda: make_backbone(in_shape=self.source.in_shape, num_outputs=None)
        self.net, self.device, self.test_episodes = self.make_net().to(device), device, test_episodes

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        net = {name: value[0] for name, value in sample_inits(self.make_net, 1, generator, self.device).items()}
        return {**net, **{PREFIX + name: value.to(self.device) for name, value in self.head.init_params().items()}}

    def log_values(self, meta_params: Tensors) -> dict[str, float]:
        """The head's own meta-parameters, as the values they stand for (exp of the logarithms)."""
        return {name.removeprefix(PREFIX).removeprefix("log_"): value.exp().item()
                for name, value in meta_params.items() if name.startswith(PREFIX)}

    def sample(self, generator: torch.Generator, count: int) -> "ProtoProblem":
        ways = self.source.shape("train")[0]
        return ProtoProblem(self.net, self.source.sample("train", count, generator), ways, self.head,
                            self.label_smoothing)

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
                problem = ProtoProblem(self.net, episodes, self.source.ways, self.head)
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
    head: FewShotHead  # the classifier fitted to each episode's support embeddings
    label_smoothing: float = 0.0  # of the meta-loss only; evaluation scores accuracy
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
        # MetaOptNet's smoothing keeps 1 − ε on the true class and spreads ε over the others; torch's
        # spreads its ε' over all k classes, true one included: the same targets for ε' = εk/(k − 1).
        smoothing = self.label_smoothing * self.ways / (self.ways - 1) if self.label_smoothing else 0.0
        return F.cross_entropy(logits.flatten(0, 1), self.episodes.query_y.flatten(), label_smoothing=smoothing)

    def query_logits(self, meta_params: Tensors) -> torch.Tensor:
        """[tasks, queries, ways]: the head's scores of each query (proto: minus its squared
        distance to each prototype)."""
        net_params = {name: value for name, value in meta_params.items() if not name.startswith(PREFIX)}
        head_params = {name.removeprefix(PREFIX): value for name, value in meta_params.items()
                       if name.startswith(PREFIX)}

        def per_task(support_x, support_y, query_x):
            embed = lambda x: functional_call(self.net, net_params, (x,)).flatten(1)  # noqa: E731
            one_hot = F.one_hot(support_y, self.ways).to(support_x.dtype)
            return self.head.logits(embed(support_x), one_hot, embed(query_x), head_params)

        episodes = self.episodes
        return vmap(per_task)(episodes.support_x, episodes.support_y, episodes.query_x)

