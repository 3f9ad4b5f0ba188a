"""Omniglot (Lake et al. 2015) in the few-shot split of Vinyals et al. 2016, as Prototypical Networks use it.

The 1,623 characters are ordered as torchvision's `images_background` (964 characters, 30 alphabets) then
`images_evaluation` (659, 20 alphabets), each by alphabet name then character name. The first 1,200 are for
meta-training and the other 423 (evaluation's Gurmukhi/character42 onwards) are meta-test. Of the 1,200,
the 172 characters of five background alphabets (`VAL_ALPHABETS`) are held out for meta-validation, leaving
1,028 for meta-training. This is character for character the split of Snell et al.'s
`data/omniglot/splits/vinyals/{train,val,test}.txt` (and torchmeta's Omniglot). With rotations each
character at 0, 90, 180 and 270 degrees is a class of its own, in the same split: 4,112/688/1,692 classes.

MAML (Finn et al. 2017) instead shuffled the characters with Python's `random.seed(1)` and took 1,100/100
for meta-train/val and the remaining 423 for meta-test; that split is not reproduced here.

Images are read with PIL as grayscale, resized to image_size² (Lanczos, as MAML's preprocessing) and
inverted so that strokes are high and the background low (the usual 1 − pixel), then standardised with the
meta-train statistics.
"""

import os

import torch
from torchvision.datasets import Omniglot

from metaopt_cli.data.episodes import FewShotData, make_few_shot_data
from metaopt_cli.data.opening import read_image_folder, torchvision_or_user_error
from metaopt_cli.errors import UserError

CHARACTERS = {"images_background": 964, "images_evaluation": 659}
META_TRAIN_AND_VAL = 1200
VAL_ALPHABETS = ("Armenian", "Bengali", "Early_Aramaic", "Hebrew", "Mkhedruli_(Georgian)")


def load(root: str, download: bool = False, image_size: int = 28, rotations: bool = True) -> FewShotData:
    if image_size < 1:
        raise UserError(f"data.image_size={image_size} must be at least 1")
    root = os.path.abspath(os.path.expanduser(root))
    characters = []  # (folder, alphabet), in the split's order
    for background in (True, False):
        folder = _folder(root, background, download)
        found = sorted((a, c) for a in _subfolders(folder) for c in _subfolders(os.path.join(folder, a)))
        expected = CHARACTERS[os.path.basename(folder)]
        if len(found) != expected:
            raise UserError(
                f"{folder} holds {len(found)} characters, but Omniglot's has {expected}: the folder is incomplete; "
                f"delete {os.path.dirname(folder)} and pass data.download=true to fetch it again"
            )
        characters += [(os.path.join(folder, a, c), a) for a, c in found]

    train_and_val, test = characters[:META_TRAIN_AND_VAL], [path for path, _ in characters[META_TRAIN_AND_VAL:]]
    val = [path for path, alphabet in train_and_val if alphabet in VAL_ALPHABETS]
    train = [path for path, alphabet in train_and_val if alphabet not in VAL_ALPHABETS]
    turns = range(4) if rotations else range(1)

    def classes(paths: list[str]) -> list[torch.Tensor]:
        out = []
        for path in paths:
            images = _read_character(path, image_size)
            out += [torch.rot90(images, k, dims=(2, 3)) for k in turns]
        return out

    return make_few_shot_data("omniglot", classes(train), classes(val), classes(test))


def _folder(root: str, background: bool, download: bool) -> str:
    """The extracted images_background or images_evaluation folder, fetched first if `download`."""
    zip_folder = os.path.join(root, Omniglot.folder)
    # torchvision checks the md5 of the .zip it downloaded, not the extracted folders next to it.
    dataset = torchvision_or_user_error(
        lambda: Omniglot(root, background=background, download=download), download, "omniglot", zip_folder,
        f"omniglot not found under {root} (looked for images_background.zip and images_evaluation.zip in "
        f"{zip_folder}, which torchvision checks): pass data.download=true to fetch it, "
        f"or data.root=<folder that holds {Omniglot.folder}>",
    )
    return dataset.target_folder


def _subfolders(folder: str) -> list[str]:
    try:
        return [name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name))]
    except FileNotFoundError:
        raise UserError(
            f"{folder} is missing next to its .zip: unzip {folder}.zip there, or delete {os.path.dirname(folder)} "
            "and pass data.download=true"
        ) from None


def _read_character(folder: str, size: int) -> torch.Tensor:
    """[n, 1, size, size] uint8, strokes 255: the drawings of one character.

    uint8 rather than float keeps the whole dataset (32,460 drawings, 4 rotations) a quarter the size until
    it is standardised; standardising makes the scale irrelevant.
    """
    images = read_image_folder(folder, (".png",), "L", size)
    if images is None:
        raise UserError(f"{folder} holds no .png drawings: delete its dataset folder and pass data.download=true")
    return 255 - torch.from_numpy(images).unsqueeze(1)
