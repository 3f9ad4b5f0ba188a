"""Small datasets written in torchvision's real on-disk formats, for loading without a download."""
from pathlib import Path

import numpy as np

from conftest import run_in_process


def write_idx(path: Path, array: np.ndarray) -> None:
    """The uint8 idx format torchvision's read_sn3_pascalvincent_tensor parses.

    Header: two zero bytes, type code 0x08 (uint8), number of dimensions; then each size as big-endian uint32.
    """
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str, n_train: int = 60, n_test: int = 20) -> None:
    """Image i carries i in its top-left pixel and has label i % 10, so each example can be traced."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28))
        images[:, 0, 0] = np.arange(n)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def train_on_stand_in_mnist(tmp_path: Path, experiment: str, overrides: list[str], folder: str = "MNIST") -> Path:
    """`metaopt train experiment=…` on small files in MNIST's real format (or Fashion-MNIST's,
    the same format in `FashionMNIST/`); its run directory."""
    write_mnist(tmp_path / "data", folder, n_train=80, n_test=20)
    result = run_in_process(["train", f"experiment={experiment}", f"data.root={tmp_path / 'data'}", "data.val_size=20",
                             *overrides, "trainer.progress=false", "logger=none", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "run"
