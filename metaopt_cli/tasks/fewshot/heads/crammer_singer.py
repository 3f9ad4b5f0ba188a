"""The Crammer–Singer multi-class SVM's dual (Crammer & Singer, JMLR 2001) as MetaOptNet poses it
(Lee et al., "Meta-learning with differentiable convex optimization", CVPR 2019): for the support
kernel K = XXᵀ [n, n] and one-hot labels Y [n, k],

    min_α  ½ Σ_k α^kᵀ K α^k + ½‖α‖² − ⟨Y, α⟩   s.t.  α_i ≤ C·Y_i,  Σ_k α_i^k = 0   (every row i),

the ½‖α‖² being MetaOptNet's ridge that keeps the QP strongly convex (μ = 1). The classifier's
weights are w_k = Σ_i α_i^k x_i.

Solved for every episode at once by a primal-dual interior-point method (qp.py) for a fixed number
of iterations, then polished: one projected-gradient step (step 1/L, L = λ_max(K) + 1), which puts
every bound that holds at the optimum exactly on its face, and a Newton step on that face (the same
active-set system as the backward pass), kept where it lowers the objective. The feasible set is a
product over rows, and a row's projection is a simplex projection: α_i = C·Y_i − w with w the
Euclidean projection of C·Y_i − z_i onto {w ≥ 0, Σ w = C} (sort-based, exact; Duchi et al. 2008).

Differentiated implicitly, never through the iterations: α* is the fixed point of
α = P(α − η∇f(α)), whose Jacobian on the active set J (per row, J_i = diag(s) − ssᵀ/|s| on the
support s of w) gives J(K + I)J dα = −J dK α*. The backward pass solves that system exactly
(dense, Cholesky, nk × nk: small in few-shot), as OptNet/qpth solve MetaOptNet's KKT system.
"""
import torch

from .qp import interior_point


# Outside torch.compile (trainer.compile=compile then runs the meta-loss eagerly, and says so): dynamo
# (torch 2.14, any backend, "eager" included) traces this autograd.Function under vmap as its
# forward's ops and differentiates through the interior point's iterations, whose step lengths give
# non-finite gradients, instead of calling the implicit backward (tests/test_heads.py checks).
@torch.compiler.disable
def solve_dual(kernel: torch.Tensor, labels: torch.Tensor, c: float, iterations: int) -> torch.Tensor:
    """α* [..., n, k], differentiable in `kernel` [..., n, n] by the implicit function theorem."""
    return _ImplicitDual.apply(kernel, labels, c, iterations)


def solve(kernel: torch.Tensor, labels: torch.Tensor, c: float, iterations: int) -> torch.Tensor:
    """`iterations` interior-point iterations, then the polish; returns a projected point."""
    n, k = labels.shape[-2:]
    eye_n = torch.eye(n, dtype=kernel.dtype, device=kernel.device)
    eye_k = torch.eye(k, dtype=kernel.dtype, device=kernel.device)
    # The Hessian (K + I) ⊗ I_k on α flattened row by row, and the rows' sums A = I_n ⊗ 1ᵀ.
    hessian = ((kernel + eye_n)[..., :, None, :, None] * eye_k[:, None, :]).reshape(*kernel.shape[:-2], n * k, n * k)
    row_sums = torch.kron(eye_n, torch.ones(1, k, dtype=kernel.dtype, device=kernel.device))
    flat = interior_point(hessian, -labels.flatten(-2), c * labels.flatten(-2), row_sums, iterations)
    alpha = projected_gradient(kernel, labels, c, 1, flat.reshape(labels.shape))
    return face_newton(kernel, labels, c, alpha)


def projected_gradient(kernel: torch.Tensor, labels: torch.Tensor, c: float, iterations: int,
                       alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Accelerated projected gradient from `alpha` (None: 0, which is feasible), differentiable only by
    unrolling it: the polish's step, and the independent solver the tests compare against."""
    lipschitz = (torch.linalg.eigvalsh(kernel)[..., -1] + 1).unsqueeze(-1).unsqueeze(-1)
    root = lipschitz.sqrt()  # √κ, with μ = 1
    momentum = (root - 1) / (root + 1)
    alpha = torch.zeros_like(labels) if alpha is None else alpha  # 0 is feasible: rows ≤ C·Y_i, summing to 0
    previous = alpha
    for _ in range(iterations):
        point = alpha + momentum * (alpha - previous)
        gradient = kernel @ point + point - labels
        previous, alpha = alpha, project(point - gradient / lipschitz, labels, c)
    return alpha


def face_newton(kernel: torch.Tensor, labels: torch.Tensor, c: float, alpha: torch.Tensor) -> torch.Tensor:
    """The minimiser of the objective on the face of the feasible set that `alpha` lies on, projected
    back (the face's affine hull may reach past its bounds), where that lowers the objective; else
    `alpha`. A select, not a branch, so that it runs under vmap."""
    gradient = kernel @ alpha + alpha - labels
    candidate = project(alpha + adjoint(kernel, active_set(alpha, labels, c), -gradient), labels, c)
    better = objective(kernel, labels, candidate) < objective(kernel, labels, alpha)
    return torch.where(better.unsqueeze(-1).unsqueeze(-1), candidate, alpha)


def objective(kernel: torch.Tensor, labels: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """½ Σ_k α^kᵀ K α^k + ½‖α‖² − ⟨Y, α⟩, per episode."""
    return ((0.5 * (kernel @ alpha + alpha) - labels) * alpha).sum((-2, -1))


def project(z: torch.Tensor, labels: torch.Tensor, c: float) -> torch.Tensor:
    """Each row of z onto {α_i ≤ C·Y_i, Σ_k α_i^k = 0}."""
    return c * labels - simplex_projection(c * labels - z, c)


def simplex_projection(v: torch.Tensor, radius: float) -> torch.Tensor:
    """Each row of v onto {w ≥ 0, Σ w = radius}: w = max(v − τ, 0), τ found from the sorted row."""
    ranked = v.sort(-1, descending=True).values
    excess = ranked.cumsum(-1) - radius
    counts = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype, device=v.device)
    # The entries kept are the largest ρ, ρ the last rank whose entry exceeds its running threshold.
    kept = (ranked - excess / counts > 0).sum(-1, keepdim=True)
    threshold = excess.gather(-1, kept - 1) / kept.to(v.dtype)
    return (v - threshold).clamp_min(0)


def active_set(alpha: torch.Tensor, labels: torch.Tensor, c: float) -> torch.Tensor:
    """[..., n, k, k]: J_i, the projection's Jacobian at α* (an orthogonal projector per row): onto
    the vectors supported where w = C·Y_i − α_i > 0 (exactly zero elsewhere: α* is a projected
    point) that sum to zero."""
    support = (c * labels - alpha > 0).to(alpha.dtype)
    size = support.sum(-1, keepdim=True).unsqueeze(-1)
    return torch.diag_embed(support) - support.unsqueeze(-1) * support.unsqueeze(-2) / size


def adjoint(kernel: torch.Tensor, jacobian: torch.Tensor, grad_alpha: torch.Tensor) -> torch.Tensor:
    """u [..., n, k] solving J(K + I)J u = J g on the range of J (the backward pass's adjoint; with
    g = −∇f, the Newton step on the face), as the positive definite system
    (J(K + I)J + I − J) u = J g: entries ((i, a), (j, b)) are (K + I)_ij (J_i J_j)_ab + δ_ij (I − J_i)_ab."""
    n, k = grad_alpha.shape[-2:]
    eye_n = torch.eye(n, dtype=kernel.dtype, device=kernel.device)
    eye_k = torch.eye(k, dtype=kernel.dtype, device=kernel.device)
    pairs = jacobian.unsqueeze(-3) @ jacobian.unsqueeze(-4)  # [..., n, n, k, k]: J_i J_j
    blocks = (kernel + eye_n)[..., None, None] * pairs + eye_n[..., None, None] * (eye_k - jacobian).unsqueeze(-3)
    system = blocks.transpose(-3, -2).reshape(*blocks.shape[:-4], n * k, n * k)
    rhs = (jacobian @ grad_alpha.unsqueeze(-1)).reshape(*grad_alpha.shape[:-2], n * k, 1)
    return torch.cholesky_solve(rhs, torch.linalg.cholesky(system)).reshape(grad_alpha.shape)


class _ImplicitDual(torch.autograd.Function):
    generate_vmap_rule = True  # the forward and backward are plain batched torch ops

    @staticmethod
    def forward(kernel, labels, c, iterations):
        return solve(kernel, labels, c, iterations)

    @staticmethod
    def setup_context(ctx, inputs, output):
        kernel, labels, c, _ = inputs
        ctx.save_for_backward(kernel, labels, output)
        ctx.c = c

    @staticmethod
    def backward(ctx, grad_alpha):
        kernel, labels, alpha = ctx.saved_tensors
        u = adjoint(kernel, active_set(alpha, labels, ctx.c), grad_alpha)
        # dL = ⟨g, dα⟩ = −⟨u, dK α*⟩: dL/dK = −u α*ᵀ.
        return -u @ alpha.mT, None, None, None
