"""The 4-block CNN of MAML and Prototypical Networks."""

import torch
from torch import nn

from metaopt_cli.backbones.norm import make_norm
from metaopt_cli.backbones.size import check_image_size
from metaopt_cli.backbones.values import check_widths


class Conv4(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_outputs: int | None,
        width: int = 64,
        norm: str = "batch",
    ):
        super().__init__()
        channels, height, wide = in_shape
        check_widths("width", width)
        check_image_size("conv4", in_shape, 4)
        blocks = []
        for c_in in (channels, width, width, width):
            blocks += [
                nn.Conv2d(c_in, width, 3, padding=1),
                make_norm(norm, width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks, nn.Flatten())
        self.feature_dim = width * (height // 16) * (wide // 16)
        self.head = nn.Linear(self.feature_dim, num_outputs) if num_outputs is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x)
        return z if self.head is None else self.head(z)
