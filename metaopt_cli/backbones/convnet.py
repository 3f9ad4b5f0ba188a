"""The ConvNet of dataset condensation: Dataset Condensation with Gradient Matching (Zhao, Mopuri &
Bilen, ICLR 2021), DSA (Zhao & Bilen, ICML 2021) and trajectory matching (Cazenavette et al.,
CVPR 2022) all distil for and evaluate on it.

`depth` blocks of 3×3 convolution (`width` channels, padding 1) → normalisation (instance norm by
default: the papers' choice, and per-example, so a synthetic set of one image per class still
normalises) → ReLU → 2×2 pooling, then a linear head on the flattened maps.
"""
import torch
from torch import nn

from metaopt_cli.backbones.norm import make_norm
from metaopt_cli.backbones.size import check_image_size
from metaopt_cli.backbones.values import check_widths
from metaopt_cli.config.backbones import Pooling
from metaopt_cli.errors import UserError


class ConvNet(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_outputs: int | None,
        width: int = 128,
        depth: int = 3,
        norm: str = "instance",
        pooling: Pooling | str = Pooling.avg,
    ):
        super().__init__()
        channels, height, wide = in_shape
        check_widths("width", width)
        if depth < 1:
            raise UserError(f"backbone.depth counts convolution blocks and must be at least 1, got {depth}")
        check_image_size("convnet", in_shape, depth)
        pool = nn.AvgPool2d if Pooling(pooling) is Pooling.avg else nn.MaxPool2d
        blocks = []
        for c_in in (channels, *[width] * (depth - 1)):
            blocks += [nn.Conv2d(c_in, width, 3, padding=1), make_norm(norm, width), nn.ReLU(), pool(2)]
            height, wide = height // 2, wide // 2
        self.features = nn.Sequential(*blocks, nn.Flatten())
        self.feature_dim = width * height * wide
        self.head = nn.Linear(self.feature_dim, num_outputs) if num_outputs is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x)
        return z if self.head is None else self.head(z)
