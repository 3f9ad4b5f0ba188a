"""A fully connected network on flattened images, for data too small for the CNNs."""

from collections.abc import Sequence

import torch
from torch import nn

from metaopt_cli.backbones.values import check_widths


class MLP(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_outputs: int | None,
        hidden: Sequence[int] = (128,),
    ):
        super().__init__()
        check_widths("hidden", hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_shape[0] * in_shape[1] * in_shape[2]
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        self.feature_dim = width
        if num_outputs is not None:
            layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
