"""Reading datasets from disk: torchvision's classes, and folders of image files."""
import os
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from PIL import Image

from metaopt_cli.errors import UserError

T = TypeVar("T")


def torchvision_or_user_error(open_dataset: Callable[[], T], download: bool, missing: str) -> T:
    """Open torchvision datasets; when they are not on disk, the UserError `missing`.

    With download=False torchvision's only RuntimeError is its "not found (or corrupted)" check;
    with download=True a RuntimeError is a failed download, which the user should see as is.
    """
    try:
        return open_dataset()
    except RuntimeError as error:
        if download:
            raise
        raise UserError(missing) from error


def read_image_folder(folder: str, extensions: tuple[str, ...], mode: str, size: int) -> np.ndarray | None:
    """The folder's images in name order as uint8 [n, size, size(, channels)], converted to the
    PIL `mode` and resized with Lanczos where needed; None if it holds none."""
    images = []
    for name in sorted(os.listdir(folder)):
        if name.lower().endswith(extensions):
            with Image.open(os.path.join(folder, name)) as image:
                image = image.convert(mode)
                if image.size != (size, size):
                    image = image.resize((size, size), resample=Image.Resampling.LANCZOS)
                images.append(np.asarray(image))
    return np.stack(images) if images else None
