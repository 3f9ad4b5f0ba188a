"""Forward-mode differentiation through the unroll with torch.func.jvp: memory constant in K.

mode=exact pushes one tangent per meta-parameter (the exact gradient, at one unroll's cost
per coordinate); mode=random pushes `directions` Gaussian tangents v and returns the forward
gradient (∇L·v) v averaged over them, unbiased because E[vvᵀ] = I (Baydin et al. 2022)."""
import warnings

import torch
from torch.func import jvp, vmap

from ..errors import UserError
from .problem import Problem, Tensors
from .unroll import total_loss

MODES = ("exact", "random")

# jvp's first call imports a torch module that still uses torch.jit.script; the warning is
# torch's own business and would otherwise land in every forward-mode run's output.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)


class Forward:
    needs_forward_mode = True

    def __init__(self, mode: str, directions: int, max_tangents: int, chunk: int):
        if mode not in MODES:
            raise UserError(f"estimator.mode must be one of {', '.join(MODES)}, got '{mode}'")
        if directions < 1 or chunk < 1:
            raise UserError(f"estimator.directions and estimator.chunk must be at least 1, got {directions} and {chunk}")
        self.mode, self.directions, self.max_tangents, self.chunk = mode, directions, max_tangents, chunk

    def check_horizon(self, horizon: int | None) -> None:
        """Any horizon works; memory does not grow with it."""

    def check_meta_params(self, meta_params: Tensors) -> None:
        """Exact mode costs one pass per meta-parameter: refuse a θ too large, before any work."""
        size = sum(value.numel() for value in meta_params.values())
        if self.mode == "exact" and size > self.max_tangents:
            raise UserError(
                f"exact forward mode needs one pass per meta-parameter, {size} here, more than "
                f"estimator.max_tangents={self.max_tangents}: use estimator.mode=random, or raise the cap"
            )

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        self.check_meta_params(meta_params)
        size = sum(value.numel() for value in meta_params.values())
        flat = torch.cat([value.detach().reshape(-1) for value in meta_params.values()])
        if self.mode == "exact":
            tangents = torch.eye(size, dtype=flat.dtype, device=flat.device)
        else:
            tangents = torch.randn((self.directions, size), generator=generator, dtype=flat.dtype, device=flat.device)

        def loss_of(vector):
            return total_loss(problem, _unflatten(vector, meta_params))

        def directional(tangent):
            return jvp(loss_of, (flat,), (tangent,))

        losses, derivatives = zip(*(vmap(directional)(block) for block in tangents.split(self.chunk)))
        derivatives = torch.cat(derivatives)
        flat_grad = derivatives if self.mode == "exact" else derivatives @ tangents / self.directions
        return _unflatten(flat_grad, meta_params), {"meta_loss": losses[0][0]}


def _unflatten(vector: torch.Tensor, like: Tensors) -> Tensors:
    pieces = vector.split([value.numel() for value in like.values()])
    return {name: piece.reshape(value.shape) for (name, value), piece in zip(like.items(), pieces)}
