"""Few-shot data: episode sampling, class-disjoint splits, sinusoids, and the real datasets from tiny files
written in their real on-disk formats."""

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
import torchvision.datasets.omniglot
from hydra.utils import instantiate
from sklearn.datasets import load_digits

from metaopt_cli.data import cifar_fs, digits, miniimagenet, omniglot, sinusoid
from metaopt_cli.data.episodes import ClassPool, FewShotData, check_episodes, class_disjoint, sample_episodes
from metaopt_cli.errors import UserError

from fewshot_files import write_miniimagenet, write_omniglot

# --- sampling -----------------------------------------------------------------------------------


def traced_pool(sizes: list[int]) -> ClassPool:
    """Example i of class c carries (c, i) in its first two pixels, so every sampled example can be traced."""
    images = []
    for c, n in enumerate(sizes):
        x = torch.randn(n, 1, 2, 2)
        x[:, 0, 0, 0], x[:, 0, 0, 1] = float(c), torch.arange(n).float()
        images.append(x)
    return ClassPool(images)


def traced(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(class, example) of each image of [..., 1, 2, 2]."""
    return x[..., 0, 0, 0].long(), x[..., 0, 0, 1].long()


SIZES = [5 + c % 4 for c in range(12)]  # uneven, and class 0 has exactly shots + queries = 5 examples


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_episode_shapes_and_label_layout():
    pool = traced_pool(SIZES)
    episodes = sample_episodes(pool, ways=4, shots=2, queries=3, count=6, generator=generator(0))
    assert episodes.support_x.shape == (6, 8, 1, 2, 2) and episodes.query_x.shape == (6, 12, 1, 2, 2)
    assert episodes.support_y.dtype == episodes.query_y.dtype == torch.int64
    assert torch.equal(episodes.support_y, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]).expand(6, -1))
    assert torch.equal(episodes.query_y, torch.arange(4).repeat_interleave(3).expand(6, -1))


def test_episode_classes_distinct_and_support_query_disjoint():
    pool = traced_pool(SIZES)
    ways, shots, queries = 5, 2, 3
    episodes = sample_episodes(pool, ways, shots, queries, count=200, generator=generator(1))
    support_class, support_example = traced(episodes.support_x.view(200, ways, shots, 1, 2, 2))
    query_class, query_example = traced(episodes.query_x.view(200, ways, queries, 1, 2, 2))

    # One class per label, the same in support and query, and ways distinct classes per episode.
    classes = support_class[:, :, 0]
    assert torch.equal(support_class, classes.unsqueeze(-1).expand_as(support_class))
    assert torch.equal(query_class, classes.unsqueeze(-1).expand_as(query_class))
    assert all(len(set(row)) == ways for row in classes.tolist())
    # Every drawn example exists, and none is drawn twice within a class of an episode.
    examples = torch.cat([support_example, query_example], dim=-1)
    assert bool((examples < torch.tensor(SIZES)[classes].unsqueeze(-1)).all())
    assert all(len(set(row)) == shots + queries for row in examples.flatten(0, 1).tolist())
    # The draws cover every class, every label position, and all examples of the largest class.
    assert set(classes.flatten().tolist()) == set(range(len(SIZES)))
    assert all(len(set(classes[:, n].tolist())) > 1 for n in range(ways))
    largest = examples[classes == 3]
    assert set(largest.flatten().tolist()) == set(range(SIZES[3]))


def test_same_seed_same_episodes():
    pool = traced_pool(SIZES)
    first, again, other = (sample_episodes(pool, 3, 1, 2, 4, generator(seed)) for seed in (7, 7, 8))
    assert torch.equal(first.support_x, again.support_x) and torch.equal(first.query_x, again.query_x)
    assert not torch.equal(first.query_x, other.query_x)


def test_pool_to_another_device_and_shared_storage():
    pool = traced_pool(SIZES)
    moved = pool.to("meta")
    assert moved.images[3].device.type == "meta" and moved.num_classes == 12 and moved.smallest == 5
    episodes = sample_episodes(moved, 3, 1, 2, 4, generator(0))  # a CPU generator, indices moved to the pool
    assert episodes.query_x.device.type == "meta" and episodes.query_x.shape == (4, 6, 1, 2, 2)
    # Built from consecutive slices of one tensor, a pool keeps that tensor rather than copying it.
    flat = torch.zeros(10, 1, 2, 2)
    assert ClassPool(list(flat.split([4, 6]))).images[0].data_ptr() == flat.data_ptr()


def test_check_episodes_errors_are_one_line():
    four = ClassPool([torch.zeros(20, 1, 2, 2)] * 4)
    with pytest.raises(UserError) as caught:
        check_episodes(four, "meta-test split of digits", ways=5, shots=1, queries=15)
    assert str(caught.value) == (
        "5-way tasks need at least 5 classes, but the meta-test split of digits has 4: lower task.ways"
    )
    short = ClassPool([torch.zeros(20, 1, 2, 2), torch.zeros(10, 1, 2, 2)])
    with pytest.raises(UserError) as caught:
        check_episodes(short, "meta-train split", ways=2, shots=1, queries=15)
    assert str(caught.value) == (
        "1 shot + 15 queries need 16 examples of every class, but a class of the meta-train split has only 10: "
        "lower task.queries or task.shots"
    )
    check_episodes(short, "meta-train split", ways=2, shots=5, queries=5)


# --- class-disjoint splits of a classification set ----------------------------------------------


@pytest.fixture(scope="module")
def digits_data():
    return digits.load(val_fraction=0.2, test_fraction=0.2, split_seed=0)


def digit_labels(data: FewShotData, turn: bool) -> list[list[set[int]]]:
    """For each split and class, the digit labels of its images (undoing class 4i+k's rotation by k).

    Both standardisations are increasing affine maps of the raw pixels 0..16, so the pooled extremes map
    every image back to its exact raw pixels, which identify it among scikit-learn's 1,797 distinct digits.
    """
    raw = load_digits()
    images = raw.images.reshape(-1, 64).astype(int).tolist()
    label_of = {tuple(image): int(label) for image, label in zip(images, raw.target)}
    pooled = torch.cat([x for p in (data.train, data.val, data.test) for x in p.images])
    low, high = pooled.min(), pooled.max()
    out = []
    for pool in (data.train, data.val, data.test):
        labels = []
        for c, images in enumerate(pool.images):
            pixels = ((torch.rot90(images, -(c % 4) if turn else 0, dims=(2, 3)) - low) / (high - low) * 16).round()
            labels.append({label_of[tuple(row)] for row in pixels.flatten(1).long().tolist()})
        out.append(labels)
    return out


def test_class_disjoint_digits_with_rotations(digits_data):
    data = class_disjoint(digits_data, rotations=True, split_seed=0)
    assert data.name == "digits" and data.in_shape == (1, 8, 8)
    assert [p.num_classes for p in (data.train, data.val, data.test)] == [24, 8, 8]
    assert sum(len(x) for p in (data.train, data.val, data.test) for x in p.images) == 4 * 1797
    labels = digit_labels(data, turn=True)
    assert all(len(found) == 1 for split in labels for found in split)  # each class is one digit
    per_split = [set().union(*split) for split in labels]
    assert sum(len(s) for s in per_split) == 10 and set().union(*per_split) == set(range(10))  # disjoint
    for pool in (data.train, data.val, data.test):
        for c in range(0, pool.num_classes, 4):
            for k in range(1, 4):  # class 4i+k is class 4i turned by k quarter turns, example for example
                torch.testing.assert_close(pool.images[c + k], torch.rot90(pool.images[c], k, dims=(2, 3)))
    meta_train = torch.cat(data.train.images)  # standardised with the meta-train classes' statistics
    torch.testing.assert_close(meta_train.mean(), torch.tensor(0.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(meta_train.std(), torch.tensor(1.0), atol=1e-4, rtol=0)


def test_class_disjoint_without_rotations_and_seed(digits_data):
    data = class_disjoint(digits_data, rotations=False, split_seed=0)
    assert [p.num_classes for p in (data.train, data.val, data.test)] == [6, 2, 2]
    labels = digit_labels(data, turn=False)
    assert sorted(label for split in labels for found in split for label in found) == list(range(10))
    again, other = (class_disjoint(digits_data, rotations=False, split_seed=s) for s in (0, 1))
    assert torch.equal(again.test.images[1], data.test.images[1])
    assert digit_labels(other, turn=False) != labels
    with pytest.raises(UserError, match="sum to 1"):
        class_disjoint(digits_data, rotations=False, fractions=(0.5, 0.2, 0.2), split_seed=0)


# --- sinusoid -----------------------------------------------------------------------------------


def test_sinusoid_tasks():
    tasks = sinusoid.load()  # MAML's defaults
    episodes = tasks.sample(500, generator(0))
    assert episodes.support_x.shape == episodes.support_y.shape == (500, 10, 1)
    assert episodes.query_x.shape == episodes.query_y.shape == (500, 10, 1)
    for x in (episodes.support_x, episodes.query_x):
        assert x.min() >= -5 and x.max() <= 5 and x.min() < -4.9 and x.max() > 4.9
    assert episodes.support_y.abs().max() <= 5

    # y = A sin(x − φ) = a sin x + b cos x with a = A cos φ, b = −A sin φ: fit (a, b) on the support set.
    def features(x):
        return torch.cat([torch.sin(x), torch.cos(x)], dim=-1).double()

    coefficients = torch.linalg.lstsq(features(episodes.support_x), episodes.support_y.double()).solution
    a, b = coefficients[:, 0, 0], coefficients[:, 1, 0]
    amplitude, phase = torch.hypot(a, b), torch.atan2(-b, a)
    assert amplitude.min() >= 0.1 - 1e-4 and amplitude.max() <= 5 + 1e-4
    assert phase.min() >= -1e-4 and phase.max() <= math.pi + 1e-4
    assert amplitude.min() < 0.3 and amplitude.max() > 4.8 and phase.max() > 3.0
    # The query points are fresh points of the same sine.
    assert not torch.equal(episodes.query_x, episodes.support_x)
    torch.testing.assert_close(features(episodes.query_x) @ coefficients, episodes.query_y.double(), atol=1e-4, rtol=0)

    again = tasks.sample(500, generator(0))
    assert torch.equal(again.query_y, episodes.query_y)


def test_sinusoid_bad_bounds():
    with pytest.raises(UserError, match="data.amplitude_min=6"):
        sinusoid.load(amplitude_min=6.0)


# --- Omniglot -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def omniglot_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("omniglot")
    write_omniglot(root)
    return root


@pytest.fixture
def omniglot_zips_unchecked(monkeypatch):
    # torchvision checks the md5 of the downloaded images_*.zip, which tiny stand-ins cannot match;
    # check instead that the folder the zip unpacks to is there.
    monkeypatch.setattr(
        torchvision.datasets.omniglot, "check_integrity", lambda path, md5=None: Path(path).with_suffix("").is_dir()
    )


def test_omniglot_vinyals_split(omniglot_root, omniglot_zips_unchecked):
    data = omniglot.load(root=str(omniglot_root), image_size=8, rotations=False)
    assert data.name == "omniglot" and data.in_shape == (1, 8, 8)
    assert [p.num_classes for p in (data.train, data.val, data.test)] == [1028, 172, 423]
    assert data.train.smallest == 2
    ink = torch.cat([data.train.images[0], data.test.images[0]]).max()  # strokes are the high value
    for pool, test_mark, val_mark in ((data.train, False, False), (data.val, False, True), (data.test, True, False)):
        corner = torch.stack([x[:, 0, 0, :2] for x in pool.images])  # [classes, drawings, 2]
        assert bool(((corner[..., 0] == ink) == test_mark).all()) and bool(((corner[..., 1] == ink) == val_mark).all())


def test_omniglot_rotations_and_size(omniglot_root, omniglot_zips_unchecked):
    data = omniglot.load(root=str(omniglot_root), image_size=4, rotations=True)
    assert data.in_shape == (1, 4, 4)
    assert [p.num_classes for p in (data.train, data.val, data.test)] == [4112, 688, 1692]
    for c in range(0, 40, 4):
        for k in range(1, 4):
            torch.testing.assert_close(data.val.images[c + k], torch.rot90(data.val.images[c], k, dims=(2, 3)))


def test_omniglot_missing(tmp_path, omniglot_zips_unchecked):
    with pytest.raises(UserError) as caught:
        omniglot.load(root=str(tmp_path))
    message = str(caught.value)
    assert str(tmp_path / "omniglot-py") in message and "data.download=true" in message and "\n" not in message


def test_omniglot_incomplete(tmp_path, omniglot_zips_unchecked):
    (tmp_path / "omniglot-py" / "images_background" / "Latin" / "character01").mkdir(parents=True)
    with pytest.raises(UserError, match="holds 1 characters, but Omniglot's has 964"):
        omniglot.load(root=str(tmp_path))


# --- CIFAR-FS -----------------------------------------------------------------------------------

CIFAR100_NAMES = sorted(cifar_fs.TRAIN_CLASSES + cifar_fs.VAL_CLASSES + cifar_fs.TEST_CLASSES)  # CIFAR-100's order


def write_cifar100(root: Path, train_per_class: int = 2, test_per_class: int = 1) -> None:
    """Pickled batches as in cifar-100-python.tar.gz: rows of 3072 bytes, all red, then green, then blue.

    Every pixel of an image's blue plane is its fine label, so the class of every image can be traced.
    """
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(per_class: int) -> dict:
        labels = np.repeat(np.arange(100), per_class)
        red_green = rng.integers(0, 256, size=(len(labels), 2, 32, 32))
        blue = np.broadcast_to(labels[:, None, None, None], (len(labels), 1, 32, 32))
        images = np.concatenate([red_green, blue], axis=1).astype(np.uint8)
        return {"data": images.reshape(len(labels), 3072), "fine_labels": labels.tolist(),
                "coarse_labels": (labels // 5).tolist()}

    (folder / "train").write_bytes(pickle.dumps(batch(train_per_class)))
    (folder / "test").write_bytes(pickle.dumps(batch(test_per_class)))
    meta = {"fine_label_names": CIFAR100_NAMES, "coarse_label_names": [f"superclass{i}" for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta))


@pytest.fixture
def cifar_unchecked(monkeypatch):
    # torchvision checks every CIFAR file against the real files' md5s; tiny stand-ins cannot match them,
    # so only check that each file is there.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())


def test_cifar_fs_standard_split(tmp_path, cifar_unchecked):
    write_cifar100(tmp_path)
    data = cifar_fs.load(root=str(tmp_path))
    assert data.name == "cifar_fs" and data.in_shape == (3, 32, 32)
    assert [p.num_classes for p in (data.train, data.val, data.test)] == [64, 16, 20]
    assert all(len(x) == 3 for p in (data.train, data.val, data.test) for x in p.images)  # train and test pooled

    # Standardisation is increasing, so the rank of a class's blue value is its fine label.
    blue = [x[:, 2].flatten() for p in (data.train, data.val, data.test) for x in p.images]
    assert all(bool((b == b[0]).all()) for b in blue)
    label = torch.stack([b[0] for b in blue]).argsort().argsort().tolist()
    names = [CIFAR100_NAMES[i] for i in label]
    assert names == list(cifar_fs.TRAIN_CLASSES + cifar_fs.VAL_CLASSES + cifar_fs.TEST_CLASSES)


def test_cifar_fs_missing(tmp_path):
    with pytest.raises(UserError) as caught:
        cifar_fs.load(root=str(tmp_path))
    message = str(caught.value)
    assert str(tmp_path / "cifar-100-python") in message and "data.download=true" in message and "\n" not in message


# --- miniImageNet -------------------------------------------------------------------------------


def test_miniimagenet(tmp_path):
    write_miniimagenet(tmp_path)
    data = miniimagenet.load(root=str(tmp_path), image_size=6)
    assert data.name == "miniimagenet" and data.in_shape == (3, 6, 6)
    assert [p.num_classes for p in (data.train, data.val, data.test)] == [64, 16, 20]
    assert data.test.smallest == 2
    per_channel = torch.cat(data.train.images).transpose(0, 1).flatten(1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-4, rtol=0)


def test_miniimagenet_missing_and_wrong_split(tmp_path):
    with pytest.raises(UserError) as caught:
        miniimagenet.load(root=str(tmp_path))
    message = str(caught.value)
    assert str(tmp_path / "train") in message and "meta-learning-lstm" in message and "\n" not in message
    write_miniimagenet(tmp_path, per_class=1)
    for extra in ("n99999998", "n99999999"):
        (tmp_path / "val" / extra).mkdir()
    with pytest.raises(UserError, match="holds 18 class folders, but Ravi & Larochelle's val split has 16"):
        miniimagenet.load(root=str(tmp_path))


# --- configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "target"),
    [
        ("omniglot", omniglot.load),
        ("cifar_fs", cifar_fs.load),
        ("miniimagenet", miniimagenet.load),
        ("sinusoid", sinusoid.load),
    ],
)
def test_few_shot_data_options_compose(compose_config, option, target):
    cfg = compose_config("train", [f"data={option}"])
    assert cfg.data._target_ == f"{target.__module__}.{target.__name__}"
    for key in cfg.data:
        cfg.data[key]  # raises on a missing (???) value


def test_sinusoid_from_config_is_maml(compose_config):
    tasks = instantiate(compose_config("train", ["data=sinusoid"]).data)
    assert tasks == sinusoid.SinusoidTasks((0.1, 5.0), (0.0, math.pi), (-5.0, 5.0), shots=10, queries=10)


def test_real_sets_from_config(compose_config, tmp_path, omniglot_root, omniglot_zips_unchecked, cifar_unchecked):
    write_cifar100(tmp_path / "cifar")
    write_miniimagenet(tmp_path / "mini", per_class=1)
    for overrides, classes in (
        (["data=omniglot", f"data.root={omniglot_root}", "data.image_size=8", "data.rotations=false"], 423),
        (["data=cifar_fs", f"data.root={tmp_path / 'cifar'}"], 20),
        (["data=miniimagenet", f"data.root={tmp_path / 'mini'}", "data.image_size=4"], 20),
    ):
        assert instantiate(compose_config("train", overrides).data).test.num_classes == classes


def test_typo_in_a_few_shot_knob_fails(compose_config):
    with pytest.raises(Exception, match="image_sise"):
        compose_config("train", ["data=omniglot", "data.image_sise=8"])
