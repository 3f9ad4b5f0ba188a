"""Reading datasets from disk: torchvision's classes, and folders of image files. What can go
wrong with the files (absent, not downloadable, truncated or corrupt) ends in one UserError
naming the file or folder and the way out."""
import os
import socket
import urllib.error
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from PIL import Image

from metaopt_cli.errors import UserError, out_of_memory

T = TypeVar("T")


def torchvision_or_user_error(open_dataset: Callable[[], T], download: bool, name: str, folder: str, missing: str) -> T:
    """Open torchvision datasets whose files live in `folder`; when they are not on disk, the
    UserError `missing`; when a download or a read fails, one saying so."""
    try:
        return open_dataset()
    # Broad: torchvision's readers raise whatever their parsers meet (ValueError, AssertionError, EOFError, ...).
    except Exception as error:
        if out_of_memory(error):
            raise  # reported with the settings that size memory, not as a damaged file
        if download and _no_network(error):
            raise UserError(
                f"data.download=true could not fetch {name} ({_reason(error)}): without a network, fetch its files "
                f"elsewhere and put them in {folder}, then run with data.download=false"
            ) from None
        # torchvision's own check that the files are there (and, for some datasets, match their checksums).
        if isinstance(error, RuntimeError) and str(error).startswith("Dataset not found"):
            raise UserError(missing) from None
        raise UserError(
            f"cannot read {name} from {folder} ({_described(error)}): a file there is truncated "
            f"or corrupt; delete {folder} and pass data.download=true to fetch it again"
        ) from None


def _no_network(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, (urllib.error.URLError, ConnectionError, TimeoutError, socket.gaierror)):
            return True
        # MNIST tries each mirror and reports their failures as one RuntimeError's text.
        if "urlopen error" in str(error) or str(error).startswith("Error downloading"):
            return True
        error = error.__cause__ or error.__context__
    return False


def _reason(error: BaseException) -> str:
    """The line of an error's text that says what went wrong (a URL error's, where one is quoted)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    quoted = [line for line in lines if "urlopen error" in line]
    return (quoted or lines or [type(error).__name__])[0]


def _described(error: BaseException) -> str:
    """An error's type and text, for errors (a bare assert) that have no text."""
    text = str(error).strip()
    return f"{type(error).__name__}: {_reason(error)}" if text else type(error).__name__


def read_image_folder(folder: str, extensions: tuple[str, ...], mode: str, size: int) -> np.ndarray | None:
    """The folder's images in name order as uint8 [n, size, size(, channels)], converted to the
    PIL `mode` and resized with Lanczos where needed; None if it holds none."""
    images = []
    for name in sorted(os.listdir(folder)):
        if name.lower().endswith(extensions):
            path = os.path.join(folder, name)
            try:
                with Image.open(path) as image:
                    image = image.convert(mode)
                    if image.size != (size, size):
                        image = image.resize((size, size), resample=Image.Resampling.LANCZOS)
                    images.append(np.asarray(image))
            # PIL's unreadable, truncated or oversized image (a folder named like an image too).
            except (OSError, ValueError, Image.DecompressionBombError) as error:
                raise UserError(f"cannot read the image {path} ({_reason(error)}): replace it, or fetch the dataset "
                                "again") from None
    return np.stack(images) if images else None
