"""A meta-trained update rule as a torch.optim.Optimizer, to train any model outside metaopt:

    optimizer = LearnedOptimizer.from_run(model.parameters(), "outputs/2026-11-27/18-00-00")
    for x, y in loader:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
"""
from pathlib import Path

import torch

from ...checkpoint import load_checkpoint
from ...errors import UserError
from ...estimators.problem import Tensors
from .rule import RULES, LSTMRule, MLPRule


class LearnedOptimizer(torch.optim.Optimizer):
    def __init__(self, params, rule_weights: Tensors, rule: MLPRule | LSTMRule):
        super().__init__(params, {})
        # Views, not copies: when the rule trains its own weights (task.self_train), each step
        # applies the weights as they are at its start.
        self.weights = {name: value.detach() for name, value in rule_weights.items()}
        self.rule = rule

    @classmethod
    def from_run(cls, params, run_dir: str | Path) -> "LearnedOptimizer":
        """The rule a `metaopt train task=learned_opt` run saved in its checkpoint."""
        run_dir = Path(run_dir)
        checkpoint = load_checkpoint(run_dir)
        if checkpoint.get("task") != "learned_opt":
            raise UserError(f"the checkpoint in {run_dir} holds {checkpoint.get('task')} meta-parameters, not a "
                            "learned optimizer: pass the directory of a task=learned_opt run")
        from ...run_config import compose_run_config  # Hydra, only when a run is read

        task = compose_run_config(run_dir).task  # never the stored config.yaml, which could name code
        return cls(params, checkpoint["meta_params"],
                   RULES[task.optimizer](task.hidden, task.step_mult, task.exp_mult))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        snapshot = {name: value.clone() for name, value in self.weights.items()}
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state.update(t=0, slots=self.rule.init_state(param))
                weights = {name: value.to(param) for name, value in snapshot.items()}
                new_value, state["slots"] = self.rule.update(weights, param, param.grad, state["slots"], state["t"])
                param.copy_(new_value)
                state["t"] += 1
        return loss
