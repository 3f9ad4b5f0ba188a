"""The candidate operations of an edge, DARTS's (its operations.py) for the conv space and
their dense analogues, as modules of C channels in and out (stride 2 on a reduction cell's
edges from its inputs)."""
import torch
import torch.nn.functional as F
from torch import nn

from .space import Space


class PlainBatchNorm(nn.Module):
    """Batch normalisation without an affine transform, as DARTS searches with (affine=False):
    a learned scale after an operation would rescale its share of the mixture behind α's back.
    Batch statistics, in plain ops always: under vmap torch's fused batch-norm backward drops
    second-order terms (backbones/norm.py, BatchStatNorm2d), and the search differentiates
    through inner steps."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps)


class Zero(nn.Module):
    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0 * (x if self.stride == 1 else x[:, :, ::self.stride, ::self.stride])


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), PlainBatchNorm(c_out))


def dil_conv(c: int, kernel: int, stride: int, padding: int, dilation: int) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, kernel, stride, padding, dilation=dilation, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False), PlainBatchNorm(c))


def sep_conv(c: int, kernel: int, stride: int, padding: int) -> nn.Module:
    """Two depthwise-separable convolutions in a row, the first carrying the stride (DARTS's SepConv)."""
    return nn.Sequential(dil_conv(c, kernel, stride, padding, 1), dil_conv(c, kernel, 1, padding, 1))


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset 1×1 convolutions of stride 2, concatenated."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = PlainBatchNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        # The second path's offset, padded at the far edge so that odd sizes halve alike.
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def pool(kind: str, c: int, stride: int) -> nn.Module:
    """A pooling op, followed (in the search) by a batch norm as DARTS's MixedOp does, so that
    its scale is comparable with the convolutions'."""
    layer = (nn.MaxPool2d(3, stride, padding=1) if kind == "max"
             else nn.AvgPool2d(3, stride, padding=1, count_include_pad=False))
    return nn.Sequential(layer, PlainBatchNorm(c))


CONV = {
    "none": lambda c, stride: Zero(stride),
    "skip_connect": lambda c, stride: nn.Identity() if stride == 1 else FactorizedReduce(c, c),
    "sep_conv_3x3": lambda c, stride: sep_conv(c, 3, stride, 1),
    "sep_conv_5x5": lambda c, stride: sep_conv(c, 5, stride, 2),
    "max_pool_3x3": lambda c, stride: pool("max", c, stride),
    "avg_pool_3x3": lambda c, stride: pool("avg", c, stride),
    "dil_conv_3x3": lambda c, stride: dil_conv(c, 3, stride, 2, 2),
    "dil_conv_5x5": lambda c, stride: dil_conv(c, 5, stride, 4, 2),
    "conv_3x3": lambda c, stride: relu_conv_bn(c, c, 3, stride, 1),
}

DENSE = {
    "none": lambda c, stride: Zero(),
    "skip_connect": lambda c, stride: nn.Identity(),
    "linear": lambda c, stride: nn.Linear(c, c),
    "linear_relu": lambda c, stride: nn.Sequential(nn.Linear(c, c), nn.ReLU()),
    "linear_tanh": lambda c, stride: nn.Sequential(nn.Linear(c, c), nn.Tanh()),
}

BUILDERS = {Space.conv: CONV, Space.dense: DENSE}


def operation(kind: Space, name: str, channels: int, stride: int) -> nn.Module:
    return BUILDERS[kind][name](channels, stride)
