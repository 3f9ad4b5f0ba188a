"""The per-parameter MLP update rule (Metz et al. 2019, 2020; learned_optimization's MLP
optimizer), as a pure function of its weights θ, so that it runs under torch.func inside an
inner loop and, unchanged, inside a torch.optim.Optimizer.

Each parameter element gets features: its gradient, momenta of the gradient at several
timescales, its own value (each normalised by its root mean square over the tensor, so the rule
sees the same scales on every layer), and the training step through tanh(t / s) at several
timescales s. A two-hidden-layer MLP maps them to a direction d and a magnitude m; the update is
d · exp(m · exp_mult) · step_mult, small constants keeping early updates small.
"""
import math

import torch

from ...estimators.problem import Tensors

DECAYS = (0.5, 0.9, 0.99, 0.999)  # momentum timescales
TIMESCALES = (1, 3, 10, 30, 100, 300, 1000, 3000)  # of the step features
FEATURES = 2 + len(DECAYS) + len(TIMESCALES)  # gradient, momenta, parameter, step
EPS = 1e-8


def init_rule(hidden: int, generator: torch.Generator, device) -> Tensors:
    """The MLP's weights: He-scaled hidden layers; the output layer starts small, so the
    first updates are small steps along the features."""
    sizes = [FEATURES, hidden, hidden, 2]
    weights = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        scale = math.sqrt(2.0 / fan_in) if i < len(sizes) - 2 else 0.01
        w = torch.randn(fan_in, fan_out, generator=generator, device=generator.device) * scale
        weights[f"w{i}"], weights[f"b{i}"] = w.to(device), torch.zeros(fan_out, device=device)
    return weights


def init_moments(param: torch.Tensor) -> list[torch.Tensor]:
    return [torch.zeros_like(param) for _ in DECAYS]


def update(rule: Tensors, param: torch.Tensor, grad: torch.Tensor, moments: list[torch.Tensor], t: int,
           step_mult: float, exp_mult: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One step of the learned optimizer on one parameter tensor: the new value and momenta."""
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
    return param - direction * torch.exp(magnitude * exp_mult) * step_mult, moments


def _normalised(feature: torch.Tensor) -> torch.Tensor:
    return feature * torch.rsqrt((feature ** 2).mean() + EPS)
