"""Dataset condensation by gradient matching (Zhao, Mopuri & Bilen, "Dataset Condensation with
Gradient Matching", ICLR 2021): learn the synthetic set so that, along a network's training on
it, the network's gradient on the synthetic images of each class points where its gradient on
real images of that class points.

How our loops map to the paper's. Each of the paper's outer iterations takes a freshly
initialised network; its `outer_loop` matchings (one per synthetic-image update) alternate with
`inner_loop` updates of the network on the synthetic set. Here an inner problem is
`trainer.meta_batch` fresh networks, `task.horizon` is the paper's outer_loop (matchings per
network) and `task.net_steps` its inner_loop (the network's full-batch SGD steps on the synthetic
set between matchings, at `task.inner_lr`: the paper's lr_net, with momentum 0.5 there and
none here). The meta-loss term of inner step t is Σ_c D(∇_w L(real batch of class c),
∇_w L(synthetic images of class c)), the distance D below, averaged over the networks; each
matching draws its own real batch per class (`task.real_batch` images of the class, the
paper's batch_real). The networks train on the synthetic images detached, as in the paper, so
the inner state does not depend on θ and the meta-gradient is Σ_t ∂D_t/∂θ: every truncation
gives the same gradient, and `estimator=tbptt estimator.online=true estimator.truncation=1`
updates the images after every matching, the paper's alternation (one meta-step per matching,
a fresh network every task.horizon meta-steps); backprop and offline tbptt update them once per
network with the mean of its matchings.
"""
import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.func import grad, vmap

from ...estimators.problem import Tensors
from ...functional import loss_fn, sample_inits, sgd_step, unprefixed
from .augment import augment
from .synthetic import SyntheticSet

COSINE_EPS = 1e-6  # keeps the cosine finite for an all-zero gradient row (a dead unit)


def layerwise_distance(real: Tensors, synthetic: Tensors) -> torch.Tensor:
    """The paper's distance between two gradients of the same network: for each weight tensor,
    each output unit's row (a conv filter's in×h×w weights, a linear unit's inputs) scores
    1 − cosine similarity, summed over rows and tensors. One-dimensional tensors (biases, norm
    scales) are left out, as in the paper's code: their gradient has no row structure."""
    total = 0.0
    for name, g_real in real.items():
        if g_real.dim() < 2:
            continue
        rows_real = g_real.flatten(1)
        rows_syn = synthetic[name].flatten(1)
        cosine = (rows_real * rows_syn).sum(-1) / (rows_real.norm(dim=-1) * rows_syn.norm(dim=-1) + COSINE_EPS)
        total = total + (1 - cosine).sum()
    return total


@dataclass
class GradientMatchProblem:
    net: nn.Module
    synthetic: SyntheticSet
    num_classes: int
    init_params: Tensors  # a batch of fresh initialisations, stacked
    train_x: torch.Tensor  # the real training images
    real_index: torch.Tensor  # int64 [horizon, networks, classes, batch]: each matching's real batch
    horizon: int
    net_steps: int
    # Differentiable Siamese augmentation (augment.py), empty without: per matching, network and
    # class, [horizon, networks, classes, …], the same draw for the class's real and synthetic batch.
    augmentations: Tensors

    @property
    def objective_steps(self) -> range:
        # Every state from the fresh network on is matched: step 0 leaves the network as it is.
        return range(1, self.horizon + 1)

    @property
    def meta_batch(self) -> int:
        return len(self.real_index[0])

    def select(self, runs: range) -> "GradientMatchProblem":
        rows = slice(runs.start, runs.stop)
        return replace(self, init_params={name: value[rows] for name, value in self.init_params.items()},
                       real_index=self.real_index[:, rows],
                       augmentations={key: value[:, rows] for key, value in self.augmentations.items()})

    def init(self, meta_params: Tensors) -> Tensors:
        return {**{f"w/{name}": value for name, value in self.init_params.items()}, **self._matching(0)}

    def _matching(self, t: int) -> Tensors:
        """What matching t+1 compares against, carried in the state (meta_loss sees no t): its real
        batches and, with DSA, its augmentations, one per network and class."""
        return {"real_index": self.real_index[t], **{f"dsa/{key}": value[t] for key, value in self.augmentations.items()}}

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        """The network's training between matchings t and t+1, on the synthetic set detached
        (none before the first matching), and matching t+1's real batches."""
        params = unprefixed(state, "w/")
        if t > 0:
            images, targets, lr = self.synthetic.unpack(meta_params)
            images, targets = images.detach(), targets.detach()
            lr = lr.detach() if torch.is_tensor(lr) else lr
            for _ in range(self.net_steps):
                params = sgd_step(self.net, params, images, targets, lr)
        return {**{f"w/{name}": value for name, value in params.items()}, **self._matching(t)}

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        images, targets, _ = self.synthetic.unpack(meta_params)
        # The synthetic set is ordered by class (SyntheticSet's labels): one group per class.
        syn_x = images.view(self.num_classes, -1, *images.shape[1:])
        syn_t = targets.view(self.num_classes, -1, *targets.shape[1:])
        classes = torch.arange(self.num_classes, device=images.device)
        per_class_grad = vmap(grad(loss_fn(self.net)), in_dims=(None, 0, 0))

        def distance(params: Tensors, index: torch.Tensor, draws: Tensors) -> torch.Tensor:
            real_x, real_y = self.train_x[index], classes.unsqueeze(1).expand_as(index)
            class_syn_x = syn_x
            if draws:  # each class's draw, alike on its real and its synthetic batch
                real_x, class_syn_x = vmap(augment)(real_x, draws), vmap(augment)(syn_x, draws)
            g_real = {name: g.detach() for name, g in per_class_grad(params, real_x, real_y).items()}
            return vmap(layerwise_distance)(g_real, per_class_grad(params, class_syn_x, syn_t)).sum()  # over classes

        return vmap(distance)(unprefixed(state, "w/"), state["real_index"], unprefixed(state, "dsa/")).mean()


def sample_gradient_match(task, generator: torch.Generator, count: int) -> GradientMatchProblem:
    """`count` fresh networks, each with its own real batches for each of its matchings."""
    train = task.data.train
    pools = [(train.y == c).nonzero().squeeze(1) for c in range(task.data.num_classes)]
    batch = min(task.real_batch, min(len(pool) for pool in pools))
    # Without repeats within a batch: the first `batch` of a random order of the class.
    index = torch.stack([
        pool[torch.rand((task.horizon, count, len(pool)), generator=generator, device=generator.device)
             .argsort(-1)[..., :batch].to(pool.device)]
        for pool in pools
    ], dim=2)
    init_params = sample_inits(task.make_net, count, generator, train.x.device)
    augmentations = {}
    if task.augment is not None:
        shape = (task.horizon, count, task.data.num_classes)
        draws = task.augment.draw(generator, math.prod(shape), train.x.device, train.x.shape[-2:])
        augmentations = {key: value.view(*shape, *value.shape[1:]) for key, value in draws.items()}
    return GradientMatchProblem(task.net, task.synthetic, task.data.num_classes, init_params, train.x, index,
                                task.horizon, task.net_steps, augmentations)
