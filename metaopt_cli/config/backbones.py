"""Schemas of the `backbone` group; input shape and output count come from the data."""
from dataclasses import dataclass
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
