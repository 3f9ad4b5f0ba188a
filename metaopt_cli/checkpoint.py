"""checkpoint.pt: everything needed to continue a run exactly where it stopped, as tensors and
plain values only, so that loading one (a colleague's, a downloaded one) never runs code."""
import pickle
import re
from pathlib import Path

import torch

from .errors import UserError
from .write_faults import replace_file

FILENAME = "checkpoint.pt"
_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")  # how torch's weights-only unpickler names a refused callable


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """Write to a temporary file, flush it to disk, then rename over the old checkpoint: a
    crash or kill at any moment leaves either the old checkpoint or the new one, whole."""
    replace_file(run_dir / FILENAME, lambda file: torch.save(state, file), binary=True)


def load_checkpoint(run_dir: Path) -> dict:
    """On the CPU: the caller moves θ to its device; RNG states must stay CPU tensors. With
    weights_only=True, unpickling refuses anything but tensors and plain containers: a file
    that names a function or class is refused before any of it runs."""
    path = run_dir / FILENAME
    if not path.exists():
        raise UserError(f"no checkpoint at {path}: pass the directory of a run that has one")
    try:
        file = path.open("rb")
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    with file:
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 -- torch reports a damaged file in many ways
            if isinstance(error, pickle.UnpicklingError) and (named := _GLOBAL.search(str(error))):
                raise UserError(f"{path} is refused: besides tensors and plain values it names {named.group(1)}, "
                                "which loading would call, and metaopt never runs code from a checkpoint; do not use "
                                "this file (an online tbptt/pes run checkpointed by an older metaopt: start it "
                                "again)") from None
            raise UserError(f"{path} is truncated, corrupt or not a metaopt checkpoint ({_first_line(error)}): "
                            "restore it from a copy, or start a new run") from None


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / FILENAME).exists()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
