"""task.self_train: the learned optimizer takes over its own meta-training (Metz et al. 2020,
"Training learned optimizers to be more general by training themselves"). The outer optimizer
(Adam or SGD) trains the rule for a warm-up; from then on the rule, with its current weights,
updates those weights from the estimator's meta-gradient, as it updates any network's, with
its own step_mult: steps sized for a fresh network's weights (task.step_mult) are too large for
the rule's, and a rule whose steps grow its own weights feeds on itself."""
from dataclasses import replace

import torch

from ...estimators.problem import Tensors
from .optimizer import LearnedOptimizer
from .rule import LSTMRule, MLPRule


class SelfTraining:
    """The outer optimizer of a self-training run: `warmup` steps of `warmup_optimizer`, then the
    rule. Its state (the step count and both optimizers' state) is one checkpointable dict."""

    def __init__(self, meta_params: Tensors, warmup_optimizer: torch.optim.Optimizer, rule: MLPRule | LSTMRule,
                 warmup: int, step_mult: float):
        self.warmup_optimizer, self.warmup, self.steps = warmup_optimizer, warmup, 0
        self.learned = LearnedOptimizer(meta_params.values(), meta_params, replace(rule, step_mult=step_mult))

    @property
    def self_training(self) -> bool:
        return self.steps >= self.warmup

    @property
    def step_size_knob(self) -> str | None:
        """What to lower when the outer steps diverge; None: the warm-up optimizer's lr."""
        return f"task.self_train_step_mult (now {self.learned.rule.step_mult})" if self.self_training else None

    def step(self) -> None:
        (self.learned if self.self_training else self.warmup_optimizer).step()
        self.steps += 1

    def state_dict(self) -> dict:
        return {"steps": self.steps, "warmup": self.warmup_optimizer.state_dict(), "learned": self.learned.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        self.warmup_optimizer.load_state_dict(state["warmup"])
        self.learned.load_state_dict(state["learned"])
