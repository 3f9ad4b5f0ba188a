"""checkpoint.pt: everything needed to continue a run exactly where it stopped."""
import os
from pathlib import Path

import torch

from .errors import UserError

FILENAME = "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """Write to a temporary file, flush it to disk, then rename over the old checkpoint: a
    crash or kill at any moment leaves either the old checkpoint or the new one, whole."""
    path = run_dir / FILENAME
    tmp = path.with_suffix(".pt.tmp")
    with tmp.open("wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def load_checkpoint(run_dir: Path) -> dict:
    """On the CPU: the caller moves θ to its device; RNG states must stay CPU tensors."""
    path = run_dir / FILENAME
    if not path.exists():
        raise UserError(f"no checkpoint at {path}: pass the directory of a run that has one")
    return torch.load(path, map_location="cpu", weights_only=False)


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / FILENAME).exists()
