"""Wide ResNet WRN-depth-widen (Zagoruyko & Komodakis, 2016) with pre-activation blocks."""

import torch
from torch import nn

from metaopt_cli.backbones.norm import make_norm
from metaopt_cli.backbones.size import check_image_size
from metaopt_cli.backbones.values import check_dropout, check_widths
from metaopt_cli.errors import UserError


class _WideBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float, norm: str):
        super().__init__()
        self.pre = nn.Sequential(make_norm(norm, c_in), nn.ReLU())
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            make_norm(norm, c_out),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        )
        identity = c_in == c_out and stride == 1
        self.shortcut = None if identity else nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pre(x)
        # A projected shortcut sees the pre-activated input, as in the reference implementation.
        skip = x if self.shortcut is None else self.shortcut(a)
        return skip + self.body(a)


class WideResNet(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_outputs: int | None,
        depth: int = 28,
        widen: int = 10,
        dropout: float = 0.0,
        norm: str = "batch",
    ):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise UserError(f"backbone.depth of a wide ResNet must be 6n+4 (10, 16, 22, 28, ...), got {depth}")
        check_widths("widen", widen)
        check_dropout(dropout)
        channels = in_shape[0]
        check_image_size("wrn", in_shape, 2)
        per_group = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1, bias=False)]
        for c_in, c_out, stride in zip(widths[:-1], widths[1:], (1, 2, 2)):
            layers.append(_WideBlock(c_in, c_out, stride, dropout, norm))
            layers += [_WideBlock(c_out, c_out, 1, dropout, norm) for _ in range(per_group - 1)]
        layers += [make_norm(norm, widths[-1]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.feature_dim = widths[-1]
        self.head = nn.Linear(self.feature_dim, num_outputs) if num_outputs is not None else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x)
        return z if self.head is None else self.head(z)
