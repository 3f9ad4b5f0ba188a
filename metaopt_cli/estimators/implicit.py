"""Implicit differentiation: run the inner loop to (near) its optimum w*(θ) without a graph,
then dL/dθ = ∂L/∂θ − (∂²f/∂θ∂w) H⁻¹ ∂L/∂w with H = ∂²f/∂w² of the inner objective f, the
inverse applied by conjugate gradients or a Neumann series of Hessian-vector products
(iMAML, Rajeswaran et al. 2019; Lorraine et al. 2020). Memory constant in K; exact at an
inner optimum.

Both assumptions are measured at every estimate and reported as metrics: how stationary the
inner loop's end is (inner_grad_norm, ‖∇_w f(θ, w_K)‖) and how well the linear system was
solved (solver_residual, ‖(H + λI)v − ∂L/∂w‖ / ‖∂L/∂w‖)."""
import logging
import math

import torch

from ..errors import UserError
from .problem import Problem, Tensors
from .solvers import conjugate_gradient, neumann, norm, relative_residual
from .unroll import leaves, unroll

SOLVERS = ("cg", "neumann")
# Off by this fraction, either assumption carries an error of about that size or more into the
# meta-gradient: the end of the inner loop is about ‖∇f(w_K)‖/‖∇f(w_0)‖ of the way it had left
# to go from w*, so the fraction measures how far w_K is from the optimum the formula assumes,
# against how far the inner loop travelled; and v's error is up to H's condition number times
# the residual.
INNER_GRAD_FRACTION = 0.1
RESIDUAL_LIMIT = 0.1

log = logging.getLogger(__name__)


class Implicit:
    needs_inner_objective = True
    needs_inner_optimum = True

    def __init__(self, solver: str, iterations: int, damping: float, neumann_lr: float):
        if solver not in SOLVERS:
            raise UserError(f"estimator.solver must be one of {', '.join(SOLVERS)}, got '{solver}'")
        if iterations < 1:
            raise UserError(f"estimator.iterations must be at least 1, got {iterations}")
        if not (math.isfinite(damping) and damping >= 0 and math.isfinite(neumann_lr) and neumann_lr > 0):
            raise UserError(f"estimator.damping must be a finite number ≥ 0 and estimator.neumann_lr a finite "
                            f"number > 0, got {damping} and {neumann_lr}")
        self.solver, self.iterations, self.damping, self.neumann_lr = solver, iterations, damping, neumann_lr
        self.warned = False  # the warning is printed once a run, not at every meta-step

    def check_horizon(self, horizon: int | None) -> None:
        """The horizon is how long the inner loop gets to converge."""

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        if not hasattr(problem, "inner_objective"):
            raise UserError("this task's inner loop has no inner objective to reach an optimum of: "
                            "use estimator=backprop or tbptt")
        meta_params = leaves(meta_params)
        with torch.no_grad():
            start = problem.init(meta_params)
            state, _ = unroll(problem, meta_params, start, 0, problem.horizon)
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
        metrics = {"meta_loss": meta_loss.detach(), "inner_grad_norm": norm(inner_grads).detach(),
                   "solver_residual": relative_residual(damped_hvp, solution, dloss_dw).detach()}
        mixed = torch.autograd.grad(inner_grads, outer, solution, allow_unused=True)
        grads = {
            name: _zero_if_none(direct, value) - _zero_if_none(cross, value)
            for (name, value), direct, cross in zip(meta_params.items(), loss_grads[len(inner):], mixed)
        }
        if not self.warned:
            self._warn_if_far(problem, meta_params, start, metrics)
        return grads, metrics

    def _warn_if_far(self, problem: Problem, meta_params: Tensors, start: Tensors, metrics: dict) -> None:
        """One warning line, the first time the inner loop ends far from stationary or the
        linear solve leaves a large residual (a host sync each meta-step until then)."""
        start = leaves(start)
        at_start = norm([g for g in torch.autograd.grad(problem.inner_objective(meta_params, start),
                                                        list(start.values()), allow_unused=True) if g is not None])
        end, residual, at_start = metrics["inner_grad_norm"].item(), metrics["solver_residual"].item(), at_start.item()
        far = not end <= INNER_GRAD_FRACTION * at_start
        unsolved = not residual <= RESIDUAL_LIMIT
        if not (far or unsolved):
            return
        self.warned = True
        log.warning(
            "implicit differentiation assumes the inner loop ends at a stationary point and the linear system is "
            f"solved, but ‖∇f(w_K)‖ = {end:.3g} ({end / max(at_start, 1e-300):.0%} of its value at the start "
            f"of the inner loop; over {INNER_GRAD_FRACTION:.0%} is far) and the solver's relative residual is "
            f"{residual:.3g} (over {RESIDUAL_LIMIT:g} is large), so the meta-gradient may be far off: raise "
            "task.horizon (more inner steps), task.proximal (a better-conditioned inner objective) or "
            "estimator.iterations (a closer solve)"
        )


def _zero_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad
