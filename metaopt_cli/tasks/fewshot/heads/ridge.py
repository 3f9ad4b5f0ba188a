"""Ridge regression head: R2D2 (Bertinetto et al., "Meta-learning with differentiable closed-form
solvers", ICLR 2019), as MetaOptNet (Lee et al., CVPR 2019) runs it.

W = argmin ‖XW − Y‖² + λ‖W‖² on the support embeddings X [n, d] and their one-hot labels Y, in
closed form; a query q scores s · qW. Few-shot support sets are smaller than the embedding is wide
(n < d), so W is computed in the dual (Woodbury) form Xᵀ(XXᵀ + λI)⁻¹Y, an n×n system, and in the
primal (XᵀX + λI)⁻¹XᵀY only where d ≤ n. Autograd differentiates the Cholesky solve exactly.

Both learn the output scale s (R2D2 also a bias, which adds the same number to every class's logit
and so changes no softmax: left out) and fix λ = 50; R2D2 offers λ as a meta-parameter too
(`learn_ridge_lambda`). Learned values are stored as logarithms, unconstrained.
"""
import math

import torch

from ...knobs import check_positive


class RidgeHead:
    def __init__(self, ridge_lambda: float, learn_ridge_lambda: bool, head_scale: float, **_):
        check_positive(ridge_lambda=ridge_lambda, head_scale=head_scale)
        self.ridge_lambda, self.learn_lambda, self.scale = ridge_lambda, learn_ridge_lambda, head_scale

    def init_params(self) -> dict[str, torch.Tensor]:
        params = {"log_scale": torch.tensor(math.log(self.scale))}
        if self.learn_lambda:
            params["log_lambda"] = torch.tensor(math.log(self.ridge_lambda))
        return params

    def logits(self, support: torch.Tensor, one_hot: torch.Tensor, query: torch.Tensor, params) -> torch.Tensor:
        lam = params["log_lambda"].exp() if self.learn_lambda else self.ridge_lambda
        return params["log_scale"].exp() * (query @ ridge_weights(support, one_hot, lam))


def ridge_weights(x: torch.Tensor, y: torch.Tensor, lam) -> torch.Tensor:
    """[d, k]: the ridge solution for embeddings x [n, d] and targets y [n, k] (leading batch
    dimensions allowed), from the smaller of the two symmetric positive definite systems."""
    n, d = x.shape[-2:]
    if d > n:  # dual: W = Xᵀ (XXᵀ + λI)⁻¹ Y
        gram = x @ x.mT + lam * torch.eye(n, dtype=x.dtype, device=x.device)
        return x.mT @ torch.cholesky_solve(y, torch.linalg.cholesky(gram))
    gram = x.mT @ x + lam * torch.eye(d, dtype=x.dtype, device=x.device)  # primal: (XᵀX + λI)⁻¹ XᵀY
    return torch.cholesky_solve(x.mT @ y, torch.linalg.cholesky(gram))

