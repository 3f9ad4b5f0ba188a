"""miniImageNet (Vinyals et al. 2016) in the split of Ravi & Larochelle 2017, from a local folder.

Layout: `<root>/{train,val,test}/<wnid>/*.jpg` (also .jpeg, .png), one folder per class: 64/16/20 classes of
600 images in the standard split, the layout most preparation scripts write. Only folders are read (not the
.pkl caches some repositories distribute), and nothing is downloaded: miniImageNet is built from ImageNet,
whose licence forbids redistribution. Images are resized to image_size² (84 in the standard benchmark) with
Lanczos, and standardised per channel with the meta-train statistics. The whole set is held in memory:
60,000 images are about 5 GB as float32 at 84×84.
"""

import os

import torch

from metaopt_cli.data.episodes import FewShotData, make_few_shot_data
from metaopt_cli.data.opening import read_image_folder
from metaopt_cli.errors import UserError

CLASSES = {"train": 64, "val": 16, "test": 20}
EXTENSIONS = (".jpg", ".jpeg", ".png")
WHERE_TO_GET_IT = (
    "build it from ImageNet with Ravi & Larochelle's split files "
    "(github.com/twitter/meta-learning-lstm, data/miniImagenet/{train,val,test}.csv) into "
    "<data.root>/{train,val,test}/<wnid>/*.jpg, or point data.root at such a folder"
)


def load(root: str, image_size: int = 84) -> FewShotData:
    if image_size < 1:
        raise UserError(f"data.image_size={image_size} must be at least 1")
    root = os.path.abspath(os.path.expanduser(root))
    splits = []
    for split, expected in CLASSES.items():
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            raise UserError(f"miniimagenet not found under {root} (looked for {folder}): {WHERE_TO_GET_IT}")
        wnids = sorted(name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name)))
        if len(wnids) != expected:
            raise UserError(
                f"{folder} holds {len(wnids)} class folders, but Ravi & Larochelle's {split} split has {expected}: "
                f"{WHERE_TO_GET_IT}"
            )
        splits.append([_read_class(os.path.join(folder, wnid), image_size) for wnid in wnids])
    return make_few_shot_data("miniimagenet", *splits)


def _read_class(folder: str, size: int) -> torch.Tensor:
    """[n, 3, size, size] uint8: the images of one class."""
    images = read_image_folder(folder, EXTENSIONS, "RGB", size)
    if images is None:
        raise UserError(f"{folder} holds no {'/'.join(EXTENSIONS)} images: {WHERE_TO_GET_IT}")
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
