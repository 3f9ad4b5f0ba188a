"""Implicit differentiation: run the inner loop to (near) its optimum w*(θ) without a graph,
then dL/dθ = ∂L/∂θ − (∂²f/∂θ∂w) H⁻¹ ∂L/∂w with H = ∂²f/∂w² of the inner objective f, the
inverse applied by conjugate gradients or a Neumann series of Hessian-vector products
(iMAML, Rajeswaran et al. 2019; Lorraine et al. 2020). Memory constant in K; exact at an
inner optimum."""
import torch

from ..errors import UserError
from .problem import Problem, Tensors
from .solvers import conjugate_gradient, neumann
from .unroll import leaves, unroll

SOLVERS = ("cg", "neumann")


class Implicit:
    needs_inner_objective = True
    needs_inner_optimum = True

    def __init__(self, solver: str, iterations: int, damping: float, neumann_lr: float):
        if solver not in SOLVERS:
            raise UserError(f"estimator.solver must be one of {', '.join(SOLVERS)}, got '{solver}'")
        if iterations < 1:
            raise UserError(f"estimator.iterations must be at least 1, got {iterations}")
        if damping < 0 or not neumann_lr > 0:
            raise UserError(f"estimator.damping must be ≥ 0 and estimator.neumann_lr > 0, got {damping} and {neumann_lr}")
        self.solver, self.iterations, self.damping, self.neumann_lr = solver, iterations, damping, neumann_lr

    def check_horizon(self, horizon: int | None) -> None:
        """The horizon is how long the inner loop gets to converge."""

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        if not hasattr(problem, "inner_objective"):
            raise UserError("this task's inner loop has no inner objective to reach an optimum of: "
                            "use estimator=backprop or tbptt")
        meta_params = leaves(meta_params)
        with torch.no_grad():
            state, _ = unroll(problem, meta_params, problem.init(meta_params), 0, problem.horizon)
        state = leaves(state)
        # w: the state the inner objective is a function of (not, say, an optimiser's momentum buffer).
        reached = torch.autograd.grad(problem.inner_objective(meta_params, state), list(state.values()),
                                      create_graph=True, allow_unused=True)
        inner = [value for value, g in zip(state.values(), reached) if g is not None]
        inner_grads = [g for g in reached if g is not None]
        outer = list(meta_params.values())
        meta_loss = problem.meta_loss(meta_params, state)
        loss_grads = torch.autograd.grad(meta_loss, inner + outer, allow_unused=True)
        dloss_dw = [_zero_if_none(g, t) for g, t in zip(loss_grads[: len(inner)], inner)]

        def damped_hvp(vectors):
            products = torch.autograd.grad(inner_grads, inner, vectors, retain_graph=True)
            return [p + self.damping * v for p, v in zip(products, vectors)]

        if self.solver == "cg":
            solution = conjugate_gradient(damped_hvp, dloss_dw, self.iterations)
        else:
            solution = neumann(damped_hvp, dloss_dw, self.iterations, self.neumann_lr)
        mixed = torch.autograd.grad(inner_grads, outer, solution, allow_unused=True)
        grads = {
            name: _zero_if_none(direct, value) - _zero_if_none(cross, value)
            for (name, value), direct, cross in zip(meta_params.items(), loss_grads[len(inner):], mixed)
        }
        return grads, {"meta_loss": meta_loss.detach()}


def _zero_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad
