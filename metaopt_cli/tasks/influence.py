"""Influence balancing (Tallec & Ollivier 2017; the PES paper's §5.1): a linear system whose
parameter θ pushes the first state up at once and down only after a long delay.

s ← A s + θ b, with A = 0.5 on the diagonal and the superdiagonal and b = (+1 ×10, −1 ×13);
the meta-loss at every step is ½(s₀ − 1)². At the steady state s₀ = 2θ Σb = −6θ, so the
best θ is −1/6. Truncated backprop with short windows sees only the early, positive
influence and pushes θ the wrong way; PES sees the whole horizon.
"""
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from ..errors import UserError
from ..estimators.problem import Tensors
from ..pictures import save_figure
from ..tracking.metrics_file import read_records
from .protocol import Objective


class InfluenceBalancing:
    default_estimator = "pes"
    data_kinds = ()  # the system is its own data
    no_inner_objective = ("the linear system is not an optimisation, so it has no inner objective for the implicit "
                          "function theorem")
    reported_metrics = ("theta", "optimal_theta", "steady_state_loss")
    default_objective = Objective("steady_state_loss", "minimize")  # θ's own loss: the system has no data to hold out

    def __init__(self, horizon: int, dim: int, positive: int, init_theta: float, device: torch.device):
        if not 0 < positive < dim:
            raise UserError(f"task.positive must be between 1 and task.dim-1={dim - 1}, got {positive}")
        if horizon < 1:
            raise UserError(f"task.horizon must be positive, got {horizon}")
        self.horizon, self.init_theta, self.device = horizon, init_theta, device
        self.A = 0.5 * (torch.eye(dim) + torch.diag(torch.ones(dim - 1), 1)).to(device)
        self.b = torch.cat([torch.ones(positive), -torch.ones(dim - positive)]).to(device)

    @property
    def optimal_theta(self) -> float:
        """s* = (I − A)⁻¹ θ b, and row 0 of (I − A)⁻¹ is all 2s: s₀* = 2θ Σb = 1 at the optimum."""
        return 1.0 / (2.0 * float(self.b.sum()))

    def init_meta_params(self, generator: torch.Generator) -> Tensors:
        return {"theta": torch.tensor(self.init_theta, device=self.device)}

    def sample(self, generator: torch.Generator, count: int) -> "LinearSystem":
        return LinearSystem(self.A, self.b, self.horizon)

    def log_values(self, meta_params: Tensors) -> dict[str, float]:
        return {"theta": meta_params["theta"].item()}

    def evaluate(self, meta_params: Tensors, generator: torch.Generator) -> dict[str, float]:
        theta = meta_params["theta"].item()
        steady_s0 = 2.0 * theta * float(self.b.sum())
        return {"theta": theta, "optimal_theta": self.optimal_theta, "steady_state_loss": 0.5 * (steady_s0 - 1) ** 2}

    def save_pictures(self, meta_params: Tensors, run_dir: Path, out_dir: Path | None = None) -> list[Path]:
        """θ over meta-steps, against the optimum."""
        records = read_records(run_dir / "metrics.jsonl")
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([r["step"] for r in records], [r["theta"] for r in records], label="θ")
        ax.axhline(self.optimal_theta, color="k", linestyle="--", label="optimum θ = −1/6")
        ax.set_xlabel("meta-step")
        ax.set_ylabel("θ")
        ax.legend()
        path = (out_dir or run_dir) / "influence.png"
        save_figure(fig, path, "θ over meta-steps")
        return [path]


class LinearSystem:
    """The inner problem: the linear system unrolled for K steps from s = 0."""

    def __init__(self, A: torch.Tensor, b: torch.Tensor, horizon: int):
        self.A, self.b, self.horizon = A, b, horizon

    @property
    def objective_steps(self) -> range:
        return range(1, self.horizon + 1)

    def init(self, meta_params: Tensors) -> Tensors:
        return {"s": torch.zeros_like(self.b)}

    def step(self, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
        return {"s": self.A @ state["s"] + meta_params["theta"] * self.b}

    def meta_loss(self, meta_params: Tensors, state: Tensors) -> torch.Tensor:
        # ½(s₀ − 1)², written on the slice s[:1] and with integer constants: forward mode gives a
        # 0-dim tensor combined with a Python float a float64 tangent (pytorch/pytorch#90065),
        # which estimator=forward could not multiply with float32 tangents.
        return (state["s"][:1] - 1).square().sum() / 2
