"""The hyperparameters of one training run, as meta-parameters.

Each learned hyperparameter is stored unconstrained, so any estimator may move it anywhere:
learning rates as logs, momentum as a logit, weight decay as a log. Those not learned stay
at their initial values. The learning rate follows a schedule over the K inner steps:
- constant: lr₀;
- inverse_decay: lr₀ / (1 + t/τ)^decay (the PES paper's), lr₀ and decay learned;
- per_step: one learned value per step.
"""
import math
from dataclasses import dataclass
from functools import cached_property

import torch

from ...errors import UserError
from ...estimators.problem import Tensors

HYPERPARAMS = ("lr", "momentum", "weight_decay")
SCHEDULES = ("constant", "inverse_decay", "per_step")


@dataclass(frozen=True)
class Hyperparams:
    learned: tuple[str, ...]  # which of HYPERPARAMS are meta-parameters
    schedule: str
    horizon: int  # K: the schedule's length
    decay_steps: float  # τ of inverse_decay
    lr: float  # initial values
    decay: float
    momentum: float
    weight_decay: float
    # Weight decay per parameter tensor of the network (its names), or one for all (empty).
    decayed: tuple[str, ...] = ()

    def __post_init__(self):
        for name in self.learned:
            if name not in HYPERPARAMS:
                raise UserError(f"unknown hyperparameter '{name}' in task.hyperparams: choose from {', '.join(HYPERPARAMS)}")
        if not self.learned:
            raise UserError(f"task.hyperparams is empty: name the ones to learn, of {', '.join(HYPERPARAMS)}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"task.schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if not 0 < self.lr < math.inf:
            raise UserError(f"task.lr is the initial learning rate and must be positive and finite, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise UserError(f"task.momentum must be in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay < math.inf:
            raise UserError(f"task.weight_decay must be non-negative and finite, got {self.weight_decay}")
        if not math.isfinite(self.decay):
            raise UserError(f"task.decay is the schedule's decay power and must be finite, got {self.decay}")
        if "momentum" in self.learned and self.momentum == 0:
            raise UserError("a learned momentum is stored as a logit and cannot start at 0: set task.momentum=0.5, say")
        if "weight_decay" in self.learned and self.weight_decay == 0:
            raise UserError("a learned weight decay is stored as a log and cannot start at 0: set task.weight_decay=1e-4, say")
        if not 0 < self.decay_steps < math.inf:
            raise UserError(f"task.decay_steps must be positive and finite, got {self.decay_steps}")

    @cached_property
    def _initial(self) -> Tensors:
        """Every hyperparameter at its initial value, in meta-parameter form; built once, as the
        inner loop fills in the fixed ones at every step."""
        return self.unconstrained(self.lr, self.decay, self.momentum, self.weight_decay)

    def init_meta_params(self, device) -> Tensors:
        # Copies: the trainer's outer steps change θ in place, never the initial values.
        return {name: value.to(device, copy=True) for name, value in self._initial.items() if self._is_learned(name)}

    def unconstrained(self, lr: float, decay: float, momentum: float, weight_decay: float) -> Tensors:
        """Every hyperparameter, learned or not, in its meta-parameter form."""
        values = {"log_lr": torch.tensor(math.log(lr))}
        if self.schedule == "per_step":
            values["log_lr"] = values["log_lr"].expand(self.horizon).clone()
        if self.schedule == "inverse_decay":
            values["decay"] = torch.tensor(float(decay))
        values["logit_momentum"] = torch.tensor(_logit(momentum))
        log_wd = torch.tensor(math.log(weight_decay) if weight_decay > 0 else -math.inf)
        values["log_weight_decay"] = log_wd.expand(len(self.decayed)).clone() if self.decayed else log_wd
        return values

    def complete(self, meta_params: Tensors) -> Tensors:
        """θ with the hyperparameters it does not learn filled in at their initial values."""
        like = next(iter(meta_params.values()))
        return {**{name: value.to(like) for name, value in self._initial.items()}, **meta_params}

    def lr_at(self, hp: Tensors, t: int) -> torch.Tensor:
        if self.schedule == "per_step":
            return hp["log_lr"][t].exp()
        if self.schedule == "inverse_decay":
            # The base as a tensor, not a Python number: under trainer.compile=compile, pow's backward
            # would read a number's value and compile the step again for every t.
            base = torch.full((), 1 + t / self.decay_steps, dtype=hp["decay"].dtype, device=hp["decay"].device)
            return hp["log_lr"].exp() / base ** hp["decay"]
        return hp["log_lr"].exp()

    def lr_schedule(self, hp: Tensors) -> torch.Tensor:
        """The learning rate at every step, [K] (for pictures and logs)."""
        return torch.stack([self.lr_at(hp, t) for t in range(self.horizon)])

    def momentum_of(self, hp: Tensors) -> torch.Tensor:
        return torch.sigmoid(hp["logit_momentum"])

    def weight_decays(self, hp: Tensors, names) -> dict[str, torch.Tensor]:
        decay = hp["log_weight_decay"].exp()
        if self.decayed:
            return {name: decay[self.decayed.index(name)] for name in names}
        return {name: decay for name in names}

    @torch.no_grad()
    def readable(self, hp: Tensors) -> dict[str, float]:
        """The hyperparameters in their own units: lr₀ (or the mean per-step lr), momentum, weight decay."""
        values = {"lr": float(self.lr_at(hp, 0)), "momentum": float(self.momentum_of(hp))}
        if self.schedule == "per_step":
            values["mean_lr"] = float(hp["log_lr"].exp().mean())
        if self.schedule == "inverse_decay":
            values["decay"] = float(hp["decay"])
        decay = hp["log_weight_decay"].exp()
        values["weight_decay"] = float(decay.mean())
        return values

    def _is_learned(self, name: str) -> bool:
        return {"log_lr": "lr", "decay": "lr", "logit_momentum": "momentum",
                "log_weight_decay": "weight_decay"}[name] in self.learned


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p) if p > 0 else -math.inf
