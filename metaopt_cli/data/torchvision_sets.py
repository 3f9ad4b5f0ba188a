"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, read as whole arrays rather than per-item transforms."""

import os

import torch
from torchvision.datasets import CIFAR10, MNIST, FashionMNIST, VisionDataset

from metaopt_cli.data.splits import Split, SplitData, make_split_data
from metaopt_cli.data.opening import torchvision_or_user_error
from metaopt_cli.errors import UserError

# name -> (torchvision class, the folder under root that it reads)
DATASETS = {
    "mnist": (MNIST, os.path.join("MNIST", "raw")),
    "fashion_mnist": (FashionMNIST, os.path.join("FashionMNIST", "raw")),
    "cifar10": (CIFAR10, CIFAR10.base_folder),
}


def load(name: str, root: str, download: bool = False, val_size: int = 5000, split_seed: int = 0,
         image_size: int = 0) -> SplitData:
    """image_size > 0 resizes every image to image_size × image_size (area averaging), as
    learned-optimizer benchmarks shrink Fashion-MNIST to 8×8."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset data.name={name!r}: choose one of {', '.join(DATASETS)}")
    if image_size < 0:
        raise UserError(f"data.image_size must be 0 (as stored) or positive, got {image_size}")
    dataset_class, folder = DATASETS[name]
    root = os.path.abspath(os.path.expanduser(root))

    official_train, official_test = torchvision_or_user_error(
        lambda: [dataset_class(root, train=train, download=download) for train in (True, False)], download,
        name, os.path.join(root, folder),
        f"{name} not found under {root} (looked in {os.path.join(root, folder)}): "
        f"pass data.download=true to fetch it, or data.root=<folder that holds {folder}>",
    )

    x, y = _pixels(official_train, image_size), _labels(official_train)
    if not 0 < val_size < len(y):
        raise UserError(
            f"data.val_size={val_size} must be between 1 and {len(y) - 1}: "
            f"{name} has {len(y)} official training examples to split into train and val"
        )
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(split_seed))
    val, train = order[:val_size], order[val_size:]

    return make_split_data(
        name,
        Split(x[train], y[train]),
        Split(x[val], y[val]),
        Split(_pixels(official_test, image_size), _labels(official_test)),
        len(official_train.classes),
    )


def _pixels(dataset: VisionDataset, image_size: int) -> torch.Tensor:
    """[N, C, H, W] from MNIST's [N, H, W] tensor or CIFAR's [N, H, W, C] numpy array: uint8, or
    float pixels when resized."""
    data = torch.as_tensor(dataset.data)
    # contiguous: a permuted view would carry channels-last strides into every later op.
    data = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2).contiguous()
    if image_size:
        return torch.nn.functional.interpolate(data.float(), size=(image_size, image_size), mode="area")
    return data


def _labels(dataset: VisionDataset) -> torch.Tensor:
    return torch.as_tensor(dataset.targets, dtype=torch.int64)
