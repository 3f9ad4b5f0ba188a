"""The `metaopt train` runs under the folders given: what each was asked for, and what it reported."""
import dataclasses
import fcntl
import json
import os
from pathlib import Path

import yaml

from ..config.store import GROUPS
from ..errors import UserError
from ..run_config import RUN_KEYS, recorded_choices, recorded_overrides
from ..tracking.metrics_file import read_records

SEED = "trainer.seed"


@dataclasses.dataclass(frozen=True)
class Run:
    path: Path
    settings: dict[str, str]  # key → `key=value`, the run's config choices and overrides (its seed among them)
    summary: dict | None  # None until the run has finished
    meta_loss: dict[int, float]  # step → meta-loss, as logged so far
    running: bool  # a live process owns it (else, without a summary, it stopped early)

    @property
    def state(self) -> str:
        return "finished" if self.summary is not None else "running" if self.running else "stopped"


def find_runs(folders: list[str]) -> list[Run]:
    """Every train run at or below each folder, once, in the order of its path (job 2 before job 10)."""
    paths = {}
    for folder in folders:
        root = Path(folder).expanduser()
        if not root.is_dir():
            what = "is not a folder" if root.exists() else "does not exist"
            raise UserError(f"{folder} {what}: pass the folder of a sweep (outputs/multirun/<date>/<time>) "
                            "or of `metaopt train` runs")
        found = _run_folders(root.resolve())
        if not found:
            raise UserError(f"{folder} holds no `metaopt train` run (a folder with .hydra/ from train): "
                            "pass a sweep's folder (outputs/multirun/<date>/<time>) or run folders")
        paths.update(dict.fromkeys(found))
    return [_read_run(path) for path in sorted(paths, key=_natural)]


def _read_run(path: Path) -> Run:
    running = _locked(path)
    return Run(path, _settings(path), _summary(path, running), _meta_loss(path), running)


def _run_folders(root: Path) -> list[Path]:
    found = []
    # os.walk, unlike Path.glob("**") before Python 3.13, does not follow links (which may loop).
    for folder, subfolders, _ in os.walk(root):
        if ".hydra" in subfolders and _is_train_run(Path(folder)):
            found.append(Path(folder))
        subfolders[:] = [name for name in subfolders if name not in (".hydra", "wandb")]
    return found


def _is_train_run(path: Path) -> bool:
    """eval writes no .hydra/ of its own; gradcheck's and bench's folders name their own job."""
    try:
        hydra = yaml.safe_load((path / ".hydra" / "hydra.yaml").read_text())
        return hydra["hydra"]["job"]["name"] == "train"
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return False  # not a run folder metaopt wrote: no .hydra/hydra.yaml, or not Hydra's


def _settings(path: Path) -> dict[str, str]:
    """Group choices from hydra.yaml (a default choice counts as much as a typed one) and the
    other overrides as typed, so that runs agree whichever way they were asked for."""
    settings = {group: f"{group}={option}" for group, option in recorded_choices(path).items() if option is not None}
    skipped = {*GROUPS, *RUN_KEYS.values()}
    settings.update({o.key_or_group: o.input_line for o in recorded_overrides(path) if o.key_or_group not in skipped})
    return settings


def _summary(path: Path, running: bool) -> dict | None:
    file = path / "summary.json"
    if not file.exists():
        return None
    try:
        summary = json.loads(file.read_text())
        if isinstance(summary, dict):
            return summary
        reason = "not a JSON object"
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if running:
        return None  # being written as we read
    raise UserError(f"cannot read {file} ({reason}): it is damaged; restore it, or pass folders without that run")


def _meta_loss(path: Path) -> dict[int, float]:
    file = path / "metrics.jsonl"
    if not file.exists():
        return {}
    return {record["step"]: float(record["meta_loss"]) for record in read_records(file)
            if isinstance(record.get("meta_loss"), (int, float))}  # null: a non-finite loss, not drawn


def _locked(path: Path) -> bool:
    """Whether a live process holds the run's lock (run_lock.py): flock dies with its process.
    The probe holds a shared lock for an instant; a `resume=` starting in that instant is told
    the run is in use, and can be run again."""
    try:
        with (path / "run.lock").open("rb") as file:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no lock file (a copied run), or a filesystem without locks
    return False


def _natural(path: Path) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)
