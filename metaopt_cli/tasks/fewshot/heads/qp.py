"""A batched primal-dual interior-point method (Mehrotra's predictor-corrector; Nocedal & Wright,
Numerical Optimization, §16.6) for small dense quadratic programs

    min_x ½ xᵀQx + pᵀx   s.t.  x ≤ h,  Ax = 0,

the form of MetaOptNet's SVM dual (qpth, which MetaOptNet solves it with, is an interior-point
method too). Every episode of a batch takes the same fixed number of iterations, with no branching
on values, so that it runs under vmap; ill-conditioning (a large kernel) costs it nothing, unlike
first-order methods, whose steps grow with the condition number.
"""
import torch

STEP_BACK = 0.99  # the fraction of the step to the boundary taken, keeping slacks and multipliers positive


def interior_point(q: torch.Tensor, p: torch.Tensor, h: torch.Tensor, a: torch.Tensor, iterations: int) -> torch.Tensor:
    """x [..., m] for Q [..., m, m] positive definite, p and h [..., m], A [r, m] (shared by the batch).
    Starts from x = 0 with the slacks s and the bounds' multipliers z at 1: an infeasible start,
    x + s = h holding only as the iterations converge."""
    m, r = q.shape[-1], a.shape[-2]
    batch = q.shape[:-2]
    x = torch.zeros_like(p)
    s, z = torch.ones_like(p), torch.ones_like(p)
    nu = p.new_zeros(*batch, r)
    # The Newton system's matrix [[Q + diag(z/s), Aᵀ], [A, 0]]: only the diagonal block changes.
    frame = torch.cat([torch.cat([q, a.mT.expand(*batch, m, r)], -1),
                       torch.cat([a.expand(*batch, r, m), q.new_zeros(*batch, r, r)], -1)], -2)
    for _ in range(iterations):
        dual_residual = (q @ x.unsqueeze(-1)).squeeze(-1) + p + z + (nu.unsqueeze(-2) @ a).squeeze(-2)
        equality_residual = (a @ x.unsqueeze(-1)).squeeze(-1)
        slack_residual = x + s - h
        barrier = (s * z).mean(-1, keepdim=True)
        diagonal = torch.cat([z / s, p.new_zeros(*batch, r)], -1)
        factors = torch.linalg.lu_factor(frame + torch.diag_embed(diagonal))
        residuals = (dual_residual, equality_residual, slack_residual, s, z)
        # Predictor: the affine step (target 0); its progress sets the centring σ = (μ_aff / μ)³.
        dx, ds, dz, dnu = direction(factors, residuals, s * z)
        step = boundary_step(s, z, ds, dz)
        sigma = (((s + step * ds) * (z + step * dz)).mean(-1, keepdim=True) / barrier) ** 3
        # Corrector: with the affine step's second-order term, centred at σμ.
        dx, ds, dz, dnu = direction(factors, residuals, s * z + ds * dz - sigma * barrier)
        step = STEP_BACK * boundary_step(s, z, ds, dz)
        x, s, z, nu = x + step * dx, s + step * ds, z + step * dz, nu + step * dnu
    return x


def boundary_step(s: torch.Tensor, z: torch.Tensor, ds: torch.Tensor, dz: torch.Tensor) -> torch.Tensor:
    """[..., 1]: the largest step ≤ 1 that keeps s and z non-negative."""
    ratios = torch.cat([torch.where(ds < 0, -s / ds, torch.inf), torch.where(dz < 0, -z / dz, torch.inf)], -1)
    return ratios.amin(-1, keepdim=True).clamp(max=1.0)


def direction(factors, residuals, complementarity: torch.Tensor):
    """(dx, ds, dz, dν): the Newton step towards s∘z = `complementarity` and zero residuals, from
    the LU factors of [[Q + diag(z/s), Aᵀ], [A, 0]] (ds and dz eliminated)."""
    dual_residual, equality_residual, slack_residual, s, z = residuals
    m = s.shape[-1]
    rhs = torch.cat([-dual_residual + (complementarity - z * slack_residual) / s, -equality_residual], -1)
    solution = torch.linalg.lu_solve(*factors, rhs.unsqueeze(-1)).squeeze(-1)
    dx, dnu = solution[..., :m], solution[..., m:]
    ds = -slack_residual - dx
    return dx, ds, (-complementarity - z * ds) / s, dnu
