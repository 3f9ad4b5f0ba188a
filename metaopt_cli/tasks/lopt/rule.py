"""Learned update rules as pure functions of their weights θ, so that they run under torch.func
inside an inner loop and, unchanged, inside a torch.optim.Optimizer. Two kinds:

mlp: the per-parameter MLP rule (Metz et al. 2019, 2020; learned_optimization's MLP optimizer).
Each parameter element gets features: its gradient, momenta of the gradient at several
timescales, its own value (each normalised by its root mean square over the tensor, so the rule
sees the same scales on every layer), and the training step through tanh(t / s) at several
timescales s. A two-hidden-layer MLP maps them to a direction d and a magnitude m; the update is
d · exp(m · exp_mult) · step_mult, small constants keeping early updates small.

lstm: the coordinate-wise LSTM (Andrychowicz et al. 2016): each element's gradient, preprocessed
into (log|g|/p, sign g) (or (−1, eᵖ g) when tiny), runs through a two-layer LSTM whose state the
element keeps from step to step; a linear read-out times step_mult is the update.
"""
import math
from dataclasses import dataclass

import torch

from ...estimators.problem import Tensors

DECAYS = (0.5, 0.9, 0.99, 0.999)  # momentum timescales
TIMESCALES = (1, 3, 10, 30, 100, 300, 1000, 3000)  # of the step features
FEATURES = 2 + len(DECAYS) + len(TIMESCALES)  # gradient, momenta, parameter, step
EPS = 1e-8


LSTM_PREPROCESS = 10.0  # p of the gradient preprocessing


@dataclass(frozen=True)
class MLPRule:
    hidden: int
    step_mult: float
    exp_mult: float

    def init(self, generator: torch.Generator, device) -> Tensors:
        """He-scaled hidden layers; the output layer starts small, so the first updates are
        small steps along the features."""
        sizes = [FEATURES, self.hidden, self.hidden, 2]
        weights = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            scale = math.sqrt(2.0 / fan_in) if i < len(sizes) - 2 else 0.01
            w = torch.randn(fan_in, fan_out, generator=generator, device=generator.device) * scale
            weights[f"w{i}"], weights[f"b{i}"] = w.to(device), torch.zeros(fan_out, device=device)
        return weights

    @property
    def slots(self) -> int:
        """Per-parameter state tensors: the momenta."""
        return len(DECAYS)

    def init_state(self, param: torch.Tensor) -> list[torch.Tensor]:
        return [torch.zeros_like(param) for _ in range(self.slots)]

    def update(self, rule: Tensors, param: torch.Tensor, grad: torch.Tensor, moments: list[torch.Tensor],
               t: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One step on one parameter tensor: the new value and momenta."""
        moments = [decay * m + (1 - decay) * grad for decay, m in zip(DECAYS, moments)]
        inputs = [_normalised(f) for f in (grad, *moments, param)]
        steps = torch.tanh(torch.tensor([t / s for s in TIMESCALES], dtype=param.dtype, device=param.device))
        x = torch.cat([torch.stack(inputs, dim=-1), steps.expand(*param.shape, -1)], dim=-1)
        layers = len(rule) // 2
        for i in range(layers):
            x = x @ rule[f"w{i}"] + rule[f"b{i}"]
            if i < layers - 1:
                x = torch.relu(x)
        direction, magnitude = x[..., 0], x[..., 1]
        return param - direction * torch.exp(magnitude * self.exp_mult) * self.step_mult, moments


@dataclass(frozen=True)
class LSTMRule:
    hidden: int
    step_mult: float
    exp_mult: float  # unused: the LSTM's read-out is the step itself
    layers: int = 2

    def init(self, generator: torch.Generator, device) -> Tensors:
        weights = {}
        for layer in range(self.layers):
            fan_in = 2 if layer == 0 else self.hidden
            for name, rows in (("w_ih", fan_in), ("w_hh", self.hidden)):
                w = torch.randn(rows, 4 * self.hidden, generator=generator, device=generator.device) / math.sqrt(rows)
                weights[f"{name}{layer}"] = w.to(device)
            weights[f"b{layer}"] = torch.zeros(4 * self.hidden, device=device)
        out = torch.randn(self.hidden, 1, generator=generator, device=generator.device) * 0.01
        weights["w_out"], weights["b_out"] = out.to(device), torch.zeros(1, device=device)
        return weights

    @property
    def slots(self) -> int:
        """Per-parameter state tensors: h and c of every layer, per element."""
        return 2 * self.layers

    def init_state(self, param: torch.Tensor) -> list[torch.Tensor]:
        return [param.new_zeros(*param.shape, self.hidden) for _ in range(self.slots)]

    def update(self, rule: Tensors, param: torch.Tensor, grad: torch.Tensor, state: list[torch.Tensor],
               t: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        large = grad.abs() >= math.exp(-LSTM_PREPROCESS)
        log_magnitude = torch.log(grad.abs().clamp_min(math.exp(-LSTM_PREPROCESS))) / LSTM_PREPROCESS
        x = torch.stack([torch.where(large, log_magnitude, -torch.ones_like(grad)),
                         torch.where(large, torch.sign(grad), math.exp(LSTM_PREPROCESS) * grad)], dim=-1)
        new_state = []
        for layer in range(self.layers):
            h, c = state[2 * layer], state[2 * layer + 1]
            gates = x @ rule[f"w_ih{layer}"] + h @ rule[f"w_hh{layer}"] + rule[f"b{layer}"]
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            x = h = torch.sigmoid(o) * torch.tanh(c)
            new_state += [h, c]
        step = (x @ rule["w_out"] + rule["b_out"])[..., 0]
        return param - step * self.step_mult, new_state


RULES = {"mlp": MLPRule, "lstm": LSTMRule}


def _normalised(feature: torch.Tensor) -> torch.Tensor:
    return feature * torch.rsqrt((feature ** 2).mean() + EPS)
