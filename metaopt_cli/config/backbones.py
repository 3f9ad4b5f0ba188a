"""Schemas of the `backbone` group; input shape and output count come from the data."""
from dataclasses import dataclass
from enum import Enum
from typing import List

from omegaconf import MISSING


@dataclass
class MLPConfig:
    _target_: str = "metaopt_cli.backbones.mlp.MLP"
    hidden: List[int] = MISSING


@dataclass
class Conv4Config:
    _target_: str = "metaopt_cli.backbones.conv4.Conv4"
    width: int = MISSING
    norm: str = MISSING  # batch | instance | none


class Pooling(Enum):
    """The ConvNet's 2×2 downsampling."""

    avg = "avg"  # the condensation papers'
    max = "max"


@dataclass
class ConvNetConfig:
    _target_: str = "metaopt_cli.backbones.convnet.ConvNet"
    width: int = MISSING
    depth: int = MISSING  # conv blocks, each halving the image
    norm: str = MISSING  # instance | batch | none
    pooling: Pooling = MISSING


@dataclass
class ResNet12Config:
    _target_: str = "metaopt_cli.backbones.resnet12.ResNet12"
    widths: List[int] = MISSING
    norm: str = MISSING


@dataclass
class WideResNetConfig:
    _target_: str = "metaopt_cli.backbones.wrn.WideResNet"
    depth: int = MISSING
    widen: int = MISSING
    dropout: float = MISSING
    norm: str = MISSING
