"""Iterative solvers of H v = b for a symmetric positive (semi)definite H given only as
Hessian-vector products, on lists of tensors (one per inner-state tensor)."""
from collections.abc import Callable

import torch

Vectors = list[torch.Tensor]


def _dot(a: Vectors, b: Vectors) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def norm(vectors: Vectors) -> torch.Tensor:
    """The Euclidean norm of all the tensors together, as one vector."""
    return torch.sqrt(sum(v.detach().square().sum() for v in vectors))


def relative_residual(matvec: Callable[[Vectors], Vectors], x: Vectors, b: Vectors) -> torch.Tensor:
    """‖Ax − b‖ / ‖b‖, with A applied once more rather than trusting a solver's running residual
    (CG's recursion drifts from the true one, and the Neumann series keeps none); 0 when b = 0."""
    residual = [p - t for p, t in zip(matvec(x), b)]
    return norm(residual) / norm(b).clamp_min(torch.finfo(b[0].dtype).tiny)


def conjugate_gradient(matvec: Callable[[Vectors], Vectors], b: Vectors, iterations: int) -> Vectors:
    x = [torch.zeros_like(t) for t in b]
    residual = [t.clone() for t in b]
    direction = [t.clone() for t in b]
    norm = _dot(residual, residual)
    for _ in range(iterations):
        product = matvec(direction)
        curvature = _dot(direction, product)
        if curvature <= 0:  # converged to round-off, or H is not positive along this direction
            break
        step = norm / curvature
        x = [xi + step * d for xi, d in zip(x, direction)]
        residual = [r - step * p for r, p in zip(residual, product)]
        new_norm = _dot(residual, residual)
        direction = [r + (new_norm / norm) * d for r, d in zip(residual, direction)]
        norm = new_norm
    return x


def neumann(matvec: Callable[[Vectors], Vectors], b: Vectors, iterations: int, lr: float) -> Vectors:
    """H⁻¹b ≈ α Σ_{j≤n} (I − αH)^j b (Lorraine et al. 2020); converges when αH < 2I."""
    term = [lr * t for t in b]
    total = [t.clone() for t in term]
    for _ in range(iterations):
        term = [t - lr * p for t, p in zip(term, matvec(term))]
        total = [s + t for s, t in zip(total, term)]
    return total
