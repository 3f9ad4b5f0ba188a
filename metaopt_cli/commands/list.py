"""`metaopt list`: the config groups, their options, and which estimator serves which task."""
from importlib.resources import files

import hydra
from omegaconf import DictConfig

from ..compat import UNSUPPORTED_IF, why_unsupported
from ..config.store import GROUPS



def options(group: str) -> list[str]:
    folder = files("metaopt_cli.conf") / group
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


@hydra.main(version_base="1.3", config_path="pkg://metaopt_cli.conf", config_name="list")
def main(cfg: DictConfig) -> None:
    print("config groups (choose with group=option):")
    for group in GROUPS:
        print(f"  {group:10s} {', '.join(options(group)) or '(none yet)'}")
    tasks, estimators = options("task"), options("estimator")
    print("\ntask × estimator (✓ runs; ~ with some settings, ✗ not: see the note):")
    width = max(map(len, tasks)) + 1
    print(" " * (width + 2) + "".join(f"{name:>10s}" for name in estimators))
    notes = []
    for task in tasks:
        cells = []
        for estimator in estimators:
            reason = why_unsupported(task, estimator)
            condition = UNSUPPORTED_IF.get((task, estimator), (None,))[0]
            cells.append(f"{'✗' if reason else '~' if condition else '✓':>10s}")
            if reason or condition:
                notes.append(f"  {task} × {estimator}: {reason or condition}")
        print(f"  {task:{width}s}" + "".join(cells))
    if notes:
        print("\n" + "\n".join(notes))
