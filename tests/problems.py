"""Inner problems with closed-form meta-gradients, written for the tests."""
from dataclasses import dataclass

import torch


@dataclass
class QuadraticProblem:
    """Gradient descent on ½wᵀAw − θᵀw from w₀, for K steps; meta-loss ½‖w − target‖².

    w_K = M^K w₀ + Σ_{j<K} M^j η θ with M = I − ηA, so dL/dθ = (Σ_j M^j η)ᵀ (w_K − target),
    and with a summed objective each step's term adds its own such product.
    """

    A: torch.Tensor
    w0: torch.Tensor
    target: torch.Tensor
    lr: float
    horizon: int
    objective: str = "final"

    @classmethod
    def random(cls, dim: int = 5, horizon: int = 12, objective: str = "final", seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        q = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))[0]
        A = q @ torch.diag(torch.linspace(0.5, 2.0, dim, dtype=torch.float64)) @ q.T
        w0 = torch.randn(dim, generator=g, dtype=torch.float64)
        target = torch.randn(dim, generator=g, dtype=torch.float64)
        return cls(A, w0, target, 0.3, horizon, objective)

    @property
    def objective_steps(self) -> range:
        return range(self.horizon, self.horizon + 1) if self.objective == "final" else range(1, self.horizon + 1)

    def init(self, meta_params):
        return {"w": self.w0.clone()}

    def step(self, meta_params, state, t):
        w = state["w"]
        return {"w": w - self.lr * (self.A @ w - meta_params["theta"])}

    def meta_loss(self, meta_params, state):
        return 0.5 * ((state["w"] - self.target) ** 2).sum()

    def inner_objective(self, meta_params, state):
        """f(θ, w) = ½wᵀAw − θᵀw, whose gradient steps the inner loop takes."""
        w = state["w"]
        return 0.5 * w @ self.A @ w - meta_params["theta"] @ w

    def implicit_gradient(self, theta: torch.Tensor) -> torch.Tensor:
        """At the inner optimum w* = A⁻¹θ: dL/dθ = A⁻¹(w* − target)."""
        solve = torch.linalg.solve
        return solve(self.A, solve(self.A, theta) - self.target)

    def exact_gradient(self, theta: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(len(theta), dtype=theta.dtype)
        M = eye - self.lr * self.A
        w, reach, grad = self.w0.clone(), torch.zeros_like(eye), torch.zeros_like(theta)
        for t in range(1, self.horizon + 1):
            w = M @ w + self.lr * theta
            reach = M @ reach + self.lr * eye  # dw_t/dθ
            if t in self.objective_steps:
                grad += reach.T @ (w - self.target) / len(self.objective_steps)
        return grad
