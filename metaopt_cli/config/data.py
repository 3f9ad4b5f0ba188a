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
    image_size: int = MISSING  # resize to image_size × image_size; 0: as stored


@dataclass
class SinusoidConfig:
    _target_: str = "metaopt_cli.data.sinusoid.load"
    amplitude_min: float = MISSING
    amplitude_max: float = MISSING
    phase_min: float = MISSING
    phase_max: float = MISSING
    x_min: float = MISSING
    x_max: float = MISSING
    shots: int = MISSING
    queries: int = MISSING


@dataclass
class OmniglotConfig:
    _target_: str = "metaopt_cli.data.omniglot.load"
    root: str = MISSING
    download: bool = MISSING
    image_size: int = MISSING
    rotations: bool = MISSING


@dataclass
class CifarFSConfig:
    _target_: str = "metaopt_cli.data.cifar_fs.load"
    root: str = MISSING
    download: bool = MISSING


@dataclass
class MiniImageNetConfig:
    _target_: str = "metaopt_cli.data.miniimagenet.load"
    root: str = MISSING
    image_size: int = MISSING
