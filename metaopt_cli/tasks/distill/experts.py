"""Expert trajectories on disk: what `metaopt experts` writes and trajectory matching reads
(Cazenavette et al., "Dataset Distillation by Matching Training Trajectories", CVPR 2022,
whose "replay buffer" this is).

A folder of experts holds

- `experts.json`: how they were trained and on what: `data` and `backbone` (the options
  chosen), `data_config` and `backbone_config` (their settings), `dataset` (the data's name),
  `image_shape` [C, H, W], `classes`, `lr`, `batch_size`, `epochs`, `count`, `seed`, `params`
  (each parameter's name and shape), and each expert's final `train_acc` and `test_acc`;
- `expert_<i>.pt` for i = 0 … count−1: a dict of parameter name → tensor [epochs + 1, *shape],
  the network's parameters at every epoch boundary (entry 0: the initialisation; entry e: after
  e epochs). Tensors only, so `torch.load(path, weights_only=True)` reads it and loading runs no
  code (DESIGN §8).

Every file is written to a temporary name and renamed, experts.json last, so a folder with an
experts.json is complete. By default a folder sits at outputs/experts/<data>-<backbone> under
the working directory, where `task=distill task.method=trajectory_match` finds it for the same
data and backbone.
"""
import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ...errors import UserError
from ...write_faults import replace_file

MANIFEST = "experts.json"
# Settings that say where the data lies, not what it is: they do not name other experts.
PLACES = ("data.root=", "data.download=")


def default_folder(choices: dict) -> Path:
    """Where `metaopt experts` writes, and trajectory matching looks, for this data and backbone:
    outputs/experts/<data>-<backbone>, followed by the command line's data.* and backbone.*
    settings where it has any (backbone.hidden=[64] trains other networks)."""
    return Path("outputs") / "experts" / ",".join([f"{choices['data']}-{choices['backbone']}", *choices["settings"]])


def experts_folder(options: DictConfig, choices) -> Path:
    """`metaopt experts`'s folder: experts.dir, or the default one for its data and backbone."""
    return Path(options.dir) if options.dir else default_folder(choices)


def check_experts_config(cfg: DictConfig, choices) -> None:
    """`metaopt experts`'s settings, before any training."""
    from ...compat import check_trainer, data_kind  # compat imports the tasks' modules

    kind = data_kind(choices["data"])
    if kind != "classification":
        raise UserError(f"metaopt experts trains classifiers, and data={choices['data']} is {kind} data: choose a "
                        "classification dataset, e.g. data=digits")
    options = cfg.experts
    for key in ("count", "epochs", "batch_size"):
        if options[key] < 1:
            raise UserError(f"experts.{key} must be at least 1, got {options[key]}")
    if not 0 < options.lr < math.inf:
        raise UserError(f"experts.lr must be positive and finite, got {options.lr}")
    check_trainer(cfg.trainer)


def run_choices() -> dict | None:
    """choices_of the running metaopt command; None outside one (Python)."""
    return choices_of(HydraConfig.get()) if HydraConfig.initialized() else None


def choices_of(hydra_cfg: DictConfig) -> dict:
    """The data and backbone options in a command's Hydra node, and the command line's settings of them."""
    settings = sorted(line for line in hydra_cfg.overrides.task
                      if line.startswith(("data.", "backbone.")) and not line.startswith(PLACES))
    return {"data": hydra_cfg.runtime.choices["data"], "backbone": hydra_cfg.runtime.choices["backbone"],
            "settings": settings}


def make_command(choices: dict | None, folder: Path) -> str:
    """The `metaopt experts` command line that writes experts for these options into `folder`
    (named only where it is not their default one); outside a command, with placeholders."""
    choices = choices or {"data": "<data>", "backbone": "<backbone>", "settings": []}
    words = ["metaopt", "experts", f"data={choices['data']}", f"backbone={choices['backbone']}", *choices["settings"]]
    if Path(folder) != default_folder(choices):
        words.append(f"experts.dir={folder}")
    return " ".join(shlex.quote(word) for word in words)


def expert_path(folder: Path, index: int) -> Path:
    return folder / f"expert_{index}.pt"


def save_expert(folder: Path, index: int, trajectory: dict[str, torch.Tensor]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # clone: a view would save the whole stacked storage it belongs to
    tensors = {name: value.detach().cpu().clone() for name, value in trajectory.items()}
    replace_file(expert_path(folder, index), lambda file: torch.save(tensors, file), binary=True)


def save_manifest(folder: Path, manifest: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    replace_file(folder / MANIFEST, lambda file: json.dump(manifest, file, indent=2))


@dataclass
class Experts:
    """Every expert's trajectory, stacked: name → [count, epochs + 1, *shape]."""

    manifest: dict
    trajectories: dict[str, torch.Tensor]

    @property
    def count(self) -> int:
        return self.manifest["count"]

    @property
    def epochs(self) -> int:
        return self.manifest["epochs"]


def check_experts_present(folder: Path, make: str) -> None:
    """Experts in `folder`, or one line with the command that makes them (at start-up, too)."""
    if not (folder / MANIFEST).is_file():
        raise UserError(f"task.method=trajectory_match needs expert trajectories, and {folder.absolute()} holds none "
                        f"(no {MANIFEST}): make them with `{make}`, or pass task.experts=<their folder>")


def load_experts(folder: Path, make: str, device: torch.device, dtype: torch.dtype) -> Experts:
    """The experts in `folder`; `make` is the command that writes them, for the error when they
    are missing."""
    check_experts_present(folder, make)
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        stacks = [torch.load(expert_path(folder, i), map_location="cpu", weights_only=True)
                  for i in range(manifest["count"])]
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot read the experts in {folder} ({reason}): make them again with `{make}`") from None
    names = list(manifest["params"])
    if any(sorted(stack) != sorted(names) for stack in stacks):
        raise UserError(f"the experts in {folder} do not hold the parameters {MANIFEST} lists: make them again "
                        f"with `{make}`")
    trajectories = {name: torch.stack([stack[name] for stack in stacks]).to(device, dtype) for name in names}
    return Experts(manifest, trajectories)
