"""Schemas of the `data` group."""
from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class DigitsConfig:
    _target_: str = "metaopt_cli.data.digits.load"
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    split_seed: int = MISSING


@dataclass
class TorchvisionConfig:
    _target_: str = "metaopt_cli.data.torchvision_sets.load"
    name: str = MISSING
    root: str = MISSING
    download: bool = MISSING
    val_size: int = MISSING
    split_seed: int = MISSING
