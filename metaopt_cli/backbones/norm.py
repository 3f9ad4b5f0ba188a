"""The normalisation layer choice shared by the convolutional backbones."""

import torch
import torch.nn.functional as F
from torch import nn
# functorch's own record of the transforms in force; torch has no public way to ask "am I under vmap?"
from torch._C._functorch import TransformType
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

from metaopt_cli.errors import UserError

NORM_KINDS = ("batch", "instance", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """Return a 2-d normalisation layer over `channels` feature maps."""
    if kind == "batch":
        return BatchStatNorm2d(channels)
    if kind == "instance":
        # GroupNorm with one channel per group is instance norm with a per-channel affine.
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise UserError(f"unknown norm {kind!r}: choose one of {', '.join(NORM_KINDS)}")


class BatchStatNorm2d(nn.Module):
    """Batch normalisation on the batch's own statistics.

    Always batch statistics: running-stat buffers would be mutated in place inside
    functional_call / vmap traces, and MAML-style inner loops normalise per batch anyway.
    Under vmap it is written with plain tensor ops: there torch's rule for the fused
    batch-norm backward treats the saved mean and 1/std as constants, so a gradient taken
    through an inner gradient step (MAML's, distillation's) loses second-order terms.
    Elsewhere the fused kernel is exact to second order and saves less for backward, so it
    runs (on a CPU, MAML task by task is about a third faster with it). Parameter names match
    nn.BatchNorm2d's.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _under_vmap():
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        scale = self.weight.view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        return (x - mean) * scale + self.bias.view(1, -1, 1, 1)


def _under_vmap() -> bool:
    return any(interpreter.key() == TransformType.Vmap for interpreter in retrieve_all_functorch_interpreters())
