"""CIFAR-FS (Bertinetto et al. 2019): CIFAR-100's 100 classes split 64/16/20 into meta-train/val/test.

All 600 images of a class (CIFAR-100's 500 train and 100 test, pooled) go to its split; 32×32 RGB,
standardised per channel with the meta-train statistics. The class lists below are the standard split of
Bertinetto et al.'s r2d2 repository, as torchmeta ships it (`datasets/assets/cifar100/cifar-fs/*.json`),
spelled as CIFAR-100's fine label names.
"""

import os

import torch
from torchvision.datasets import CIFAR100

from metaopt_cli.data.episodes import FewShotData, make_few_shot_data
from metaopt_cli.data.opening import torchvision_or_user_error
from metaopt_cli.errors import UserError

TRAIN_CLASSES = (
    "dolphin", "seal", "aquarium_fish", "ray", "trout", "orchid", "sunflower", "tulip", "bottle", "bowl", "can",
    "cup", "plate", "apple", "mushroom", "orange", "pear", "clock", "keyboard", "chair", "couch", "bee",
    "caterpillar", "cockroach", "bear", "lion", "tiger", "wolf", "bridge", "castle", "house", "road", "skyscraper",
    "cloud", "forest", "mountain", "elephant", "kangaroo", "porcupine", "possum", "raccoon", "skunk", "lobster",
    "spider", "boy", "girl", "dinosaur", "lizard", "snake", "turtle", "hamster", "mouse", "rabbit", "shrew",
    "squirrel", "oak_tree", "palm_tree", "pine_tree", "willow_tree", "bus", "train", "lawn_mower", "streetcar",
    "tank",
)  # fmt: skip
VAL_CLASSES = (
    "beaver", "otter", "flatfish", "shark", "lamp", "television", "beetle", "butterfly", "sea", "camel", "cattle",
    "crab", "crocodile", "maple_tree", "motorcycle", "tractor",
)  # fmt: skip
TEST_CLASSES = (
    "whale", "poppy", "rose", "sweet_pepper", "telephone", "bed", "table", "wardrobe", "leopard", "plain",
    "chimpanzee", "fox", "snail", "worm", "baby", "man", "woman", "bicycle", "pickup_truck", "rocket",
)  # fmt: skip


def load(root: str, download: bool = False) -> FewShotData:
    root = os.path.abspath(os.path.expanduser(root))
    parts = torchvision_or_user_error(
        lambda: [CIFAR100(root, train=train, download=download) for train in (True, False)], download,
        "cifar_fs (CIFAR-100)", os.path.join(root, CIFAR100.base_folder),
        f"cifar_fs needs CIFAR-100, not found under {root} (looked in {os.path.join(root, CIFAR100.base_folder)}): "
        f"pass data.download=true to fetch it, or data.root=<folder that holds {CIFAR100.base_folder}>",
    )

    names = parts[0].classes
    missing = [name for name in TRAIN_CLASSES + VAL_CLASSES + TEST_CLASSES if name not in names]
    if missing:
        raise UserError(
            f"{os.path.join(root, CIFAR100.base_folder, 'meta')} lacks the CIFAR-100 classes {', '.join(missing)}: "
            "it is not CIFAR-100's; delete the folder and pass data.download=true"
        )
    # [N, H, W, C] uint8 -> [N, C, H, W]; contiguous so that no channels-last strides reach later ops.
    x = torch.cat([torch.as_tensor(part.data) for part in parts]).permute(0, 3, 1, 2).contiguous()
    y = torch.cat([torch.as_tensor(part.targets, dtype=torch.int64) for part in parts])

    def classes(chosen: tuple[str, ...]) -> list[torch.Tensor]:
        return [x[y == names.index(name)] for name in chosen]

    return make_few_shot_data("cifar_fs", classes(TRAIN_CLASSES), classes(VAL_CLASSES), classes(TEST_CLASSES))
