"""Multi-class SVM head: MetaOptNet (Lee et al., "Meta-learning with differentiable convex
optimization", CVPR 2019). The Crammer–Singer SVM's dual (crammer_singer.py) on the support
embeddings, with a linear kernel; a query q scores s · Σ_i α_i^k ⟨x_i, q⟩ for class k, s a learned
output scale (MetaOptNet's, initially 1), stored as its logarithm."""
import math

import torch

from ....errors import UserError
from ...knobs import check_positive
from .crammer_singer import solve_dual


class SVMHead:
    def __init__(self, svm_c: float, svm_iterations: int, head_scale: float, **_):
        if not 0 < svm_c < math.inf:
            raise UserError(f"task.svm_c is the SVM's C, the bound on its dual variables, and must be positive "
                            f"(MetaOptNet: 0.1), got {svm_c}")
        if svm_iterations < 1:
            raise UserError(f"task.svm_iterations counts the SVM solver's steps and must be at least 1, "
                            f"got {svm_iterations}")
        check_positive(head_scale=head_scale)
        self.c, self.iterations, self.scale = svm_c, svm_iterations, head_scale

    def init_params(self) -> dict[str, torch.Tensor]:
        return {"log_scale": torch.tensor(math.log(self.scale))}

    def logits(self, support: torch.Tensor, one_hot: torch.Tensor, query: torch.Tensor, params) -> torch.Tensor:
        # The QP's linear algebra (eigvalsh, LU, Cholesky) has no bfloat16 kernels, and an interior
        # point needs more digits than bfloat16 keeps: under trainer.precision=bf16 it runs in float32.
        wide = torch.promote_types(support.dtype, torch.float32)
        with torch.autocast(support.device.type, enabled=False):
            exact = support.to(wide)
            alpha = solve_dual(exact @ exact.mT, one_hot.to(wide), self.c, self.iterations)
        return params["log_scale"].exp() * ((query @ support.mT) @ alpha)
