"""Schemas of the `data` group. Each declares the kind of data its loader gives, which tasks
name in their `data_kinds` (tasks/protocol.py)."""
from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

# kind -> what a loader of that kind gives, in the words `metaopt list` and the errors use.
DATA_KINDS = {
    "classification": "labelled examples in train, validation and test splits",
    "few_shot": "classes split into meta-train, meta-val and meta-test classes",
    "regression": "regression tasks drawn on the fly",
}


@dataclass
class DigitsConfig:
    kind: ClassVar[str] = "classification"
    _target_: str = "metaopt_cli.data.digits.load"
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    split_seed: int = MISSING
    image_size: int = MISSING  # upsample (bilinear) to image_size × image_size; 0: as stored, 8×8


@dataclass
class TorchvisionConfig:
    kind: ClassVar[str] = "classification"
    _target_: str = "metaopt_cli.data.torchvision_sets.load"
    name: str = MISSING
    root: str = MISSING
    download: bool = MISSING
    val_size: int = MISSING
    split_seed: int = MISSING
    image_size: int = MISSING  # resize to image_size × image_size; 0: as stored


@dataclass
class SinusoidConfig:
    kind: ClassVar[str] = "regression"
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
    kind: ClassVar[str] = "few_shot"
    _target_: str = "metaopt_cli.data.omniglot.load"
    root: str = MISSING
    download: bool = MISSING
    image_size: int = MISSING
    rotations: bool = MISSING


@dataclass
class CifarFSConfig:
    kind: ClassVar[str] = "few_shot"
    _target_: str = "metaopt_cli.data.cifar_fs.load"
    root: str = MISSING
    download: bool = MISSING


@dataclass
class MiniImageNetConfig:
    kind: ClassVar[str] = "few_shot"
    _target_: str = "metaopt_cli.data.miniimagenet.load"
    root: str = MISSING
    image_size: int = MISSING
