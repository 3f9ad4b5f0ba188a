"""Schemas of the `task` group."""
from dataclasses import dataclass
from enum import Enum
from typing import List, Optional

from omegaconf import MISSING


class Batching(Enum):
    """How a MAML meta-batch's tasks run."""

    auto = "auto"  # vmap on CUDA; on a CPU, loop for a convolutional backbone, vmap for an MLP: as measured
    vmap = "vmap"  # the tasks as one batch (GPUs)
    loop = "loop"  # one task after another, as the peers' loops do (CPUs)


class SearchSpaceKind(Enum):
    """task=nas's search space."""

    conv = "conv"  # DARTS's convolutional cells, normal and reduction
    dense = "dense"  # the same cells on feature vectors (MLP-sized: digits flattened), normal cells only


class DistillMethod(Enum):
    """What task=distill's meta-loss compares."""

    unroll = "unroll"  # the trained networks' loss on real data (Wang et al. 2018)
    gradient_match = "gradient_match"  # each step's per-class gradients, synthetic against real (Zhao et al. 2021)
    trajectory_match = "trajectory_match"  # K steps from an expert's epoch t, to its epoch t + M (MTT, 2022)


class Head(Enum):
    """task=protonet's classifier on the support embeddings (tasks/fewshot/heads/)."""

    proto = "proto"  # Prototypical Networks: softmax over minus the squared distance to each class mean
    ridge = "ridge"  # R2D2: ridge regression onto one-hot targets, in closed form
    svm = "svm"  # MetaOptNet: the Crammer–Singer multi-class SVM, differentiated implicitly


@dataclass
class DistillConfig:
    _target_: str = "metaopt_cli.tasks.distill.task.Distill"
    method: DistillMethod = MISSING
    horizon: int = MISSING  # K: inner SGD steps on the synthetic set (gradient_match: matchings)
    images_per_class: int = MISSING
    learn_labels: bool = MISSING  # soft labels as extra meta-parameters
    learn_lr: bool = MISSING  # the inner learning rate as a meta-parameter
    inner_lr: float = MISSING  # initial inner learning rate
    init: str = MISSING  # synthetic images start as random real images, or as noise
    real_batch: int = MISSING  # real training images scoring each meta-step (gradient_match: per class)
    net_steps: int = MISSING  # gradient_match: the network's SGD steps between matchings
    eval_models: int = MISSING  # fresh networks trained on the distilled set at evaluation
    eval_steps: int = MISSING  # full-batch steps for the random-real baseline
    # The random-real baseline's learning-rate grid, the best picked on validation.
    eval_lrs: List[float] = MISSING
    # Differentiable Siamese augmentation (tasks/distill/augment.py) of the real and synthetic
    # batches a matching method compares.
    dsa: bool = MISSING
    # Backbone options (conf/backbone/<name>.yaml, at their defaults) the final evaluation also
    # trains the distilled set and the random-real baseline into.
    eval_backbones: List[str] = MISSING
    method: DistillMethod = MISSING
    # trajectory_match: the folder of `metaopt experts`; null: outputs/experts/<data>-<backbone>
    experts: Optional[str] = MISSING
    expert_epochs: int = MISSING  # trajectory_match: M, the expert epochs the K synthetic steps match
    max_start_epoch: int = MISSING  # trajectory_match: the start epoch t is drawn from 0 … this − 1
    syn_batch: Optional[int] = MISSING  # trajectory_match: synthetic images per inner step; null: all


@dataclass
class InfluenceConfig:
    _target_: str = "metaopt_cli.tasks.influence.InfluenceBalancing"
    horizon: int = MISSING  # steps before the system restarts from s = 0
    dim: int = MISSING  # length of the state s
    positive: int = MISSING  # leading entries of b that are +1; the rest are −1
    init_theta: float = MISSING


@dataclass
class MAMLConfig:
    _target_: str = "metaopt_cli.tasks.fewshot.maml.MAML"
    horizon: int = MISSING  # K: inner SGD steps on each task's support set
    ways: int = MISSING  # N classes per task (classification data)
    shots: int = MISSING  # K examples per class in the support set
    queries: int = MISSING  # Q examples per class in the query set
    inner_lr: float = MISSING
    learn_inner_lr: bool = MISSING  # Meta-SGD: a learned learning rate per adapted weight
    first_order: bool = MISSING  # FOMAML: no second derivatives through the inner steps
    anil: bool = MISSING  # adapt the last linear layer only
    proximal: float = MISSING  # iMAML's λ, pulling adapted weights to θ (0: plain MAML)
    test_episodes: int = MISSING
    test_horizon: int = MISSING  # inner steps at meta-test time
    split_seed: int = MISSING  # the class-disjoint split of a classification dataset
    batching: Batching = MISSING


@dataclass
class ProtoNetConfig:
    _target_: str = "metaopt_cli.tasks.fewshot.protonet.ProtoNet"
    ways: int = MISSING
    shots: int = MISSING
    queries: int = MISSING
    test_episodes: int = MISSING
    split_seed: int = MISSING
    head: Head = MISSING
    head_scale: float = MISSING  # ridge, svm: the learned output scale's initial value
    ridge_lambda: float = MISSING  # ridge: the regulariser λ (its initial value where learned)
    learn_ridge_lambda: bool = MISSING  # ridge: λ as a meta-parameter (R2D2) or fixed (MetaOptNet)
    svm_c: float = MISSING  # svm: the SVM's C, the bound on each support example's dual variables
    svm_iterations: int = MISSING  # svm: the dual QP solver's interior-point iterations
    label_smoothing: float = MISSING  # ε: the meta-loss's targets keep 1 − ε on the true class (MetaOptNet: 0.1)
    # Meta-training's episodes where they differ from the meta-val/meta-test ones; null: the same.
    train_ways: Optional[int] = MISSING
    train_shots: Optional[int] = MISSING
    train_queries: Optional[int] = MISSING


@dataclass
class HPOConfig:
    _target_: str = "metaopt_cli.tasks.hpo.task.HPO"
    horizon: int = MISSING  # K: SGD steps of one training run
    hyperparams: List[str] = MISSING  # the learned ones, of lr, momentum, weight_decay
    schedule: str = MISSING  # the learning rate over steps: constant | inverse_decay | per_step
    decay_steps: float = MISSING  # τ of inverse_decay: lr₀ / (1 + t/τ)^decay
    lr: float = MISSING  # initial values of the hyperparameters (fixed where not learned)
    decay: float = MISSING
    momentum: float = MISSING
    weight_decay: float = MISSING
    per_layer_weight_decay: bool = MISSING  # one weight decay per parameter tensor
    batch_size: int = MISSING  # training examples per SGD step
    val_batch: int = MISSING  # validation examples scoring each meta-step
    objective: str = MISSING  # the validation loss at the end (final) or averaged over the run (sum)
    eval_seeds: int = MISSING  # fresh training runs at evaluation, for each setting
    random_search_trials: int = MISSING  # the random-search baseline's budget: trials × K inner steps


@dataclass
class LearnedOptConfig:
    _target_: str = "metaopt_cli.tasks.lopt.task.LearnedOpt"
    horizon: int = MISSING  # K: training steps of one inner problem
    optimizer: str = MISSING  # the rule: mlp (per-parameter MLP) | lstm (coordinate-wise LSTM)
    hidden: int = MISSING  # units in each of the rule's two hidden (or LSTM) layers
    batch_size: int = MISSING  # training examples per inner step
    scored: str = MISSING  # the split whose loss along the run is the meta-objective: train | val
    scored_batch_size: int = MISSING  # its examples scoring every step
    step_mult: float = MISSING  # update = direction · exp(magnitude · exp_mult) · step_mult
    exp_mult: float = MISSING
    test_horizon: int = MISSING  # meta-test training steps (longer than K shows generalisation)
    test_seeds: int = MISSING  # held-out networks at meta-test
    adam_lrs: List[float] = MISSING  # the tuned baselines' learning-rate grids
    sgd_lrs: List[float] = MISSING
    self_train: bool = MISSING  # after the warm-up, the rule updates its own weights
    self_train_warmup: int = MISSING  # outer steps of trainer.outer_optimizer before it does
    self_train_step_mult: float = MISSING  # the rule's step_mult when it updates itself


@dataclass
class NASConfig:
    _target_: str = "metaopt_cli.tasks.nas.task.NAS"
    space: SearchSpaceKind = MISSING
    # Each edge's candidates (metaopt_cli/tasks/nas/space.py lists the names); null: DARTS's eight
    # (conv) or every dense one.
    operations: Optional[List[str]] = MISSING
    cells: int = MISSING  # cells stacked (conv: reduction cells at 1/3 and 2/3 of the depth)
    nodes: int = MISSING  # intermediate nodes of a cell
    channels: int = MISSING  # initial channels (conv) or width (dense)
    horizon: int = MISSING  # K: inner SGD steps of the weights w (online: before w restarts fresh)
    lr: float = MISSING  # the inner SGD's learning rate (DARTS's ξ and η)
    momentum: float = MISSING
    weight_decay: float = MISSING  # also the inner objective's for estimator=implicit (iDARTS)
    batch_size: int = MISSING  # training examples per inner step
    val_batch: int = MISSING  # validation examples scoring each meta-step
    first_order: bool = MISSING  # DARTS's first order: the inner steps see α as a constant
    warm_start: bool = MISSING  # w persists across meta-steps: an online estimator's inner run
    top_k: int = MISSING  # edges kept per node in the derived architecture (DARTS: 2)
    log_alphas: bool = MISSING  # every edge's operation weights in metrics.jsonl (alphas.png)
    eval_steps: int = MISSING  # SGD steps retraining a derived or random architecture from scratch
    eval_seeds: int = MISSING  # retrainings, for the mean and std
    eval_lr: float = MISSING
    random_archs: int = MISSING  # the random baseline: the best on validation of this many
