"""Data loaders: digits for real, the torchvision sets from tiny files in torchvision's own on-disk formats."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from hydra.utils import instantiate

from metaopt_cli.data import cifar_fs, digits, omniglot, torchvision_sets
from metaopt_cli.data.splits import SplitData
from metaopt_cli.errors import UserError

from torchvision_files import write_mnist


def assert_train_standardised(data: SplitData) -> None:
    per_channel = data.train.x.transpose(0, 1).flatten(1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(data.in_shape[0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(1), torch.ones(data.in_shape[0]), atol=1e-4, rtol=0)


def rows(x: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(row) for row in x.flatten(1).tolist()}


# --- digits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_data() -> SplitData:
    return digits.load(val_fraction=0.2, test_fraction=0.2, split_seed=0)


def test_digits_shapes(digits_data):
    assert digits_data.name == "digits"
    assert digits_data.num_classes == 10
    assert digits_data.in_shape == (1, 8, 8)
    for split in (digits_data.train, digits_data.val, digits_data.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 8, 8) and split.y.shape == split.x.shape[:1]
        assert set(split.y.tolist()) == set(range(10))  # stratified: every class in every split
    sizes = [len(s.y) for s in (digits_data.train, digits_data.val, digits_data.test)]
    assert sum(sizes) == 1797
    assert abs(sizes[1] - 0.2 * 1797) <= 1 and abs(sizes[2] - 0.2 * 1797) <= 1


def test_digits_splits_disjoint(digits_data):
    # The 1,797 digit images are pairwise distinct, so disjoint indices mean disjoint image sets.
    train, val, test = (rows(s.x) for s in (digits_data.train, digits_data.val, digits_data.test))
    assert len(train) + len(val) + len(test) == 1797
    assert not (train & val or train & test or val & test)


def test_digits_upsampled_to_image_size_keep_their_images(digits_data):
    large = digits.load(image_size=32)
    assert large.in_shape == (1, 32, 32) and large.train.x.shape[1:] == (1, 32, 32)
    assert torch.equal(large.test.y, digits_data.test.y)  # the same split, image for image
    # Bilinear upsampling by 4, averaged back over 4×4 blocks, is close to the stored image
    # (standardised alike); a mismatched image is not.
    shrunk = torch.nn.functional.avg_pool2d(large.test.x, 4)
    assert (shrunk - digits_data.test.x).abs().mean() < 0.25  # 0.16 measured
    assert (shrunk - digits_data.test.x.roll(1, 0)).abs().mean() > 0.5
    assert torch.equal(digits.load(image_size=8).test.x, digits_data.test.x)  # 8: as stored


@pytest.mark.parametrize("size", [-1, 257])
def test_digits_refuse_a_nonsense_image_size(size):
    with pytest.raises(UserError, match=rf"data.image_size={size} must be 0 .* e.g. 32"):
        digits.load(image_size=size)


def test_digits_split_fixed_by_seed(digits_data):
    again = digits.load(split_seed=0)
    other = digits.load(split_seed=1)
    assert torch.equal(again.test.x, digits_data.test.x) and torch.equal(again.val.y, digits_data.val.y)
    assert not torch.equal(other.test.x, digits_data.test.x)


def test_digits_train_standardised(digits_data):
    assert_train_standardised(digits_data)


def test_digits_bad_fractions():
    with pytest.raises(UserError, match="val_fraction"):
        digits.load(val_fraction=0.5, test_fraction=0.5)


def test_split_data_to_and_config(digits_data, compose_config):
    moved = digits_data.to("meta")
    assert moved.test.x.device.type == "meta" and moved.train.y.device.type == "meta"
    assert moved.num_classes == 10 and moved.in_shape == (1, 8, 8)
    from_config = instantiate(compose_config("train", ["data=digits"]).data)
    assert torch.equal(from_config.val.x, digits_data.val.x)


# --- MNIST / Fashion-MNIST ----------------------------------------------------------------------


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like(tmp_path, name, folder):
    write_mnist(tmp_path, folder)
    data = torchvision_sets.load(name=name, root=str(tmp_path), val_size=10, split_seed=0)

    assert data.name == name and data.num_classes == 10 and data.in_shape == (1, 28, 28)
    assert [len(s.y) for s in (data.train, data.val, data.test)] == [50, 10, 20]
    assert_train_standardised(data)

    # Standardisation is increasing in the pixel, so sorting by the top-left pixel recovers image order.
    train_and_val = torch.cat([data.train.x, data.val.x])[:, 0, 0, 0]
    labels = torch.cat([data.train.y, data.val.y])
    assert len(train_and_val.unique()) == 60  # train and val are disjoint
    assert torch.equal(labels[train_and_val.argsort()], torch.arange(60) % 10)
    assert torch.equal(data.test.y[data.test.x[:, 0, 0, 0].argsort()], torch.arange(20) % 10)

    same = torchvision_sets.load(name=name, root=str(tmp_path), val_size=10, split_seed=0)
    other = torchvision_sets.load(name=name, root=str(tmp_path), val_size=10, split_seed=1)
    assert torch.equal(same.val.x, data.val.x)
    assert not torch.equal(other.val.x, data.val.x)


def test_mnist_from_config(tmp_path, compose_config):
    write_mnist(tmp_path, "MNIST")
    cfg = compose_config("train", ["data=mnist", f"data.root={tmp_path}", "data.val_size=10"])
    assert len(instantiate(cfg.data).val.y) == 10


def test_missing_dataset_is_one_line_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UserError) as caught:
        torchvision_sets.load(name="mnist", root="~/datasets")
    message = str(caught.value)
    assert str(tmp_path / "datasets") in message
    assert "data.download=true" in message
    assert "\n" not in message


def test_val_size_too_large(tmp_path):
    write_mnist(tmp_path, "MNIST")
    with pytest.raises(UserError, match="val_size"):
        torchvision_sets.load(name="mnist", root=str(tmp_path), val_size=60)


def test_unknown_name_lists_choices(tmp_path):
    with pytest.raises(UserError, match="mnist, fashion_mnist, cifar10"):
        torchvision_sets.load(name="imagenet", root=str(tmp_path))


# --- CIFAR-10 -----------------------------------------------------------------------------------


def write_cifar10(root: Path, per_batch: int = 4, n_test: int = 6) -> None:
    """Pickled batches as in cifar-10-python.tar.gz: rows of 3072 bytes, all red then green then blue, row-major.

    Red varies only along the width and green only along the height, so a wrong axis order shows.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n: int, first: int) -> dict:
        index = np.arange(first, first + n)[:, None, None]
        red = 7 * np.arange(32)[None, None, :] + index + np.zeros((1, 32, 1), dtype=int)
        green = 7 * np.arange(32)[None, :, None] + index + np.zeros((1, 1, 32), dtype=int)
        blue = rng.integers(0, 256, size=(n, 32, 32))
        images = np.stack([red, green, blue], axis=1).astype(np.uint8)
        return {"data": images.reshape(n, 3072), "labels": [i % 10 for i in range(first, first + n)]}

    for b in range(5):
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch(per_batch, b * per_batch)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(n_test, 0)))
    label_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": label_names}))


def test_cifar10(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    # torchvision checks every CIFAR file (batches and batches.meta) against the real files' md5s;
    # tiny stand-ins cannot match them, so only check that each file is there.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    data = torchvision_sets.load(name="cifar10", root=str(tmp_path), val_size=5)

    assert data.num_classes == 10 and data.in_shape == (3, 32, 32)
    assert [len(s.y) for s in (data.train, data.val, data.test)] == [15, 5, 6]
    assert_train_standardised(data)
    red, green = data.train.x[:, 0], data.train.x[:, 1]
    assert torch.allclose(red, red[:, :1, :].expand_as(red))  # constant down each column
    assert torch.allclose(green, green[:, :, :1].expand_as(green))  # constant along each row
    assert torch.equal(data.test.y, torch.arange(6) % 10)


def test_cifar10_missing(tmp_path):
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        torchvision_sets.load(name="cifar10", root=str(tmp_path))


def test_image_size_shrinks_by_area_averaging(tmp_path):
    """data.image_size=8: 28×28 MNIST-format images become 8×8 (learned_optimization's small
    tasks); each 8×8 pixel is a mean of the original's, so the standardised values stay finite."""
    write_mnist(tmp_path, "FashionMNIST", n_train=40, n_test=10)
    data = torchvision_sets.load(name="fashion_mnist", root=str(tmp_path), val_size=10, image_size=8)
    assert data.in_shape == (1, 8, 8) and data.train.x.shape == (30, 1, 8, 8) and data.test.x.shape == (10, 1, 8, 8)
    assert torch.isfinite(data.train.x).all()
    with pytest.raises(UserError, match="data.image_size"):
        torchvision_sets.load(name="fashion_mnist", root=str(tmp_path), val_size=10, image_size=-1)


# --- files that cannot be fetched or read ----------------------------------------------------------

@pytest.mark.parametrize(
    ("load", "folder"),
    [
        (lambda root: torchvision_sets.load("fashion_mnist", root, download=True), "FashionMNIST/raw"),
        (lambda root: torchvision_sets.load("cifar10", root, download=True), "cifar-10-batches-py"),
        (lambda root: cifar_fs.load(root, download=True), "cifar-100-python"),
        (lambda root: omniglot.load(root, download=True), "omniglot-py"),
    ],
    ids=["fashion_mnist", "cifar10", "cifar_fs", "omniglot"],
)
def test_download_without_a_network_says_where_to_put_the_files(tmp_path, monkeypatch, load, folder):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # a closed local port: no network
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    with pytest.raises(UserError) as error:
        load(str(tmp_path))
    message = str(error.value)
    assert "could not fetch" in message and str(tmp_path / folder) in message and "data.download=false" in message


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        (lambda raw: (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + bytes(8)),
         ["cannot read mnist", "truncated or corrupt"]),
        (lambda raw: (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x07" * 3), ["cannot read mnist"]),
    ],
    ids=["images-header-only", "labels-garbage"],
)
def test_corrupt_mnist_file_is_one_line_naming_the_folder(tmp_path, damage, fragments):
    write_mnist(tmp_path, "MNIST", n_train=20, n_test=10)
    damage(tmp_path / "MNIST" / "raw")
    with pytest.raises(UserError) as error:
        torchvision_sets.load("mnist", str(tmp_path), val_size=5)
    assert all(fragment in str(error.value) for fragment in fragments), error.value
    assert str(tmp_path / "MNIST" / "raw") in str(error.value)


def test_unreadable_image_names_the_file(tmp_path):
    from metaopt_cli.data.opening import read_image_folder

    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "b.png").mkdir()  # a folder where an image should be
    with pytest.raises(UserError, match="a.png"):
        read_image_folder(str(tmp_path), (".png",), "L", 8)
    (tmp_path / "a.png").unlink()
    with pytest.raises(UserError, match="b.png"):
        read_image_folder(str(tmp_path), (".png",), "L", 8)
