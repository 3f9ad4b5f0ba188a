"""The ResNet-12 of TADAM and MetaOptNet."""

from collections.abc import Sequence

import torch
from torch import nn

from metaopt_cli.backbones.norm import make_norm
from metaopt_cli.backbones.size import check_image_size
from metaopt_cli.backbones.values import check_widths
from metaopt_cli.errors import UserError


class _Block(nn.Module):
    """Three 3x3 convs with a projected shortcut, then a 2x downsample."""

    def __init__(self, c_in: int, c_out: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            make_norm(norm, c_out),
            nn.LeakyReLU(0.1),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            make_norm(norm, c_out),
            nn.LeakyReLU(0.1),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            make_norm(norm, c_out),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), make_norm(norm, c_out))
        self.out = nn.Sequential(nn.LeakyReLU(0.1), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class ResNet12(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_outputs: int | None,
        widths: Sequence[int] = (64, 160, 320, 640),
        norm: str = "batch",
    ):
        super().__init__()
        channels = in_shape[0]
        widths = [int(w) for w in widths]
        if not widths:
            raise UserError("backbone.widths lists the width of each residual block and cannot be empty")
        check_widths("widths", widths)
        check_image_size("resnet12", in_shape, len(widths))
        ins = [channels, *widths[:-1]]
        self.features = nn.Sequential(
            *(_Block(c_in, c_out, norm) for c_in, c_out in zip(ins, widths)),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.feature_dim = widths[-1]
        self.head = nn.Linear(self.feature_dim, num_outputs) if num_outputs is not None else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x)
        return z if self.head is None else self.head(z)
