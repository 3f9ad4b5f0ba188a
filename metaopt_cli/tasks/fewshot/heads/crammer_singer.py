"""The Crammer–Singer multi-class SVM's dual (Crammer & Singer, JMLR 2001) as MetaOptNet poses it
(Lee et al., "Meta-learning with differentiable convex optimization", CVPR 2019): for the support
kernel K = XXᵀ [n, n] and one-hot labels Y [n, k],

    min_α  ½ Σ_k α^kᵀ K α^k + ½‖α‖² − ⟨Y, α⟩   s.t.  α_i ≤ C·Y_i,  Σ_k α_i^k = 0   (every row i),

the ½‖α‖² being MetaOptNet's ridge that keeps the QP strongly convex (μ = 1). The classifier's
weights are w_k = Σ_i α_i^k x_i.

Solved for every episode at once by Nesterov's accelerated projected gradient for strongly convex
objectives (step 1/L, L = λ_max(K) + 1; momentum (√κ − 1)/(√κ + 1), κ = L), a fixed number of steps
so that it runs under vmap. The feasible set is a product over rows, and a row's projection is a
simplex projection: α_i = C·Y_i − w with w the Euclidean projection of C·Y_i − z_i onto
{w ≥ 0, Σ w = C} (sort-based, exact; Duchi et al. 2008).

Differentiated implicitly, never through the iterations: α* is the fixed point of
α = P(α − η∇f(α)), whose Jacobian on the active set J (per row, J_i = diag(s) − ssᵀ/|s| on the
support s of w) gives J(K + I)J dα = −J dK α*. The backward pass solves that system exactly
(dense, Cholesky, nk × nk: small in few-shot), as OptNet/qpth solve MetaOptNet's KKT system.
"""
import torch


def solve_dual(kernel: torch.Tensor, labels: torch.Tensor, c: float, iterations: int) -> torch.Tensor:
    """α* [..., n, k], differentiable in `kernel` [..., n, n] by the implicit function theorem."""
    return _ImplicitDual.apply(kernel, labels, c, iterations)


def projected_gradient(kernel: torch.Tensor, labels: torch.Tensor, c: float, iterations: int) -> torch.Tensor:
    """The solver itself, differentiable only by unrolling it (what the tests compare against)."""
    lipschitz = (torch.linalg.eigvalsh(kernel)[..., -1] + 1).unsqueeze(-1).unsqueeze(-1)
    root = lipschitz.sqrt()  # √κ, with μ = 1
    momentum = (root - 1) / (root + 1)
    alpha = torch.zeros_like(labels)  # feasible: every row 0 ≤ C·Y_i and summing to 0
    previous = alpha
    for _ in range(iterations):
        point = alpha + momentum * (alpha - previous)
        gradient = kernel @ point + point - labels
        previous, alpha = alpha, project(point - gradient / lipschitz, labels, c)
    return alpha


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
    """u [..., n, k] solving J(K + I)J u = J g on the range of J, as the positive definite system
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
        return projected_gradient(kernel, labels, c, iterations)

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
