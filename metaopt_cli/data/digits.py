"""scikit-learn's handwritten digits: 1,797 real 8x8 images shipped inside the package, so no download.

`image_size` upsamples them (bilinear), so that the convolutional backbones, which halve an image
four times, can be tried offline: `backbone=conv4 data.image_size=32`. Upsampling adds no detail.
"""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from metaopt_cli.data.splits import Split, SplitData, make_split_data
from metaopt_cli.errors import UserError


STORED = 8  # the side of the images as scikit-learn ships them
# Past this side an upsampled copy only costs memory (1,797 images × side² floats: 0.5 GB at 256).
LARGEST = 256


def load(val_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 0, image_size: int = 0) -> SplitData:
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise UserError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must each be above 0 "
            "and sum to below 1"
        )
    if not 0 <= image_size <= LARGEST:
        raise UserError(f"data.image_size={image_size} must be 0 (as stored, {STORED}×{STORED}) or a side from 1 to "
                        f"{LARGEST}: the digits are {STORED}×{STORED}, and conv4 or resnet12 need at least 16, e.g. 32")
    digits = load_digits()
    x = torch.from_numpy(digits.images).unsqueeze(1)  # [N, 1, 8, 8], values 0..16
    if image_size and image_size != STORED:
        # Antialiased when shrinking, where bilinear alone would skip pixels.
        x = F.interpolate(x.float(), size=(image_size, image_size), mode="bilinear", align_corners=False,
                          antialias=image_size < STORED)
    y = torch.from_numpy(digits.target)

    # Stratified so that every split keeps the 10 classes in the dataset's proportions.
    rest, test = train_test_split(
        np.arange(len(y)), test_size=test_fraction, stratify=digits.target, random_state=split_seed
    )
    train, val = train_test_split(
        rest,
        test_size=val_fraction / (1 - test_fraction),
        stratify=digits.target[rest],
        random_state=split_seed,
    )

    def take(index: np.ndarray) -> Split:
        index = torch.from_numpy(index)
        return Split(x[index], y[index])

    return make_split_data("digits", take(train), take(val), take(test), len(digits.target_names))
