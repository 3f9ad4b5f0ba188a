"""`metaopt list`: the config groups, their options, and which estimator and which data serve
which task (derived from what the parts declare; see compat.py)."""
import textwrap

import hydra
from omegaconf import DictConfig

from ..compat import condition, data_kind, lacking, task_class, why_unsupported_data
from ..config.data import DATA_KINDS
from ..config.store import GROUPS, options
from ..tasks.protocol import declared

WIDTH = 100  # a terminal's columns; notes wrap to it


@hydra.main(version_base="1.3", config_path="pkg://metaopt_cli.conf", config_name="list")
def main(cfg: DictConfig) -> None:
    print("config groups (choose with group=option):")
    width = max(map(len, GROUPS)) + 1
    for group in GROUPS:
        print(_wrapped(f"  {group:{width}s}{', '.join(options(group)) or '(none yet)'}", width + 2))
    tasks = options("task")
    print()
    print("\n".join(task_by_estimator(tasks, options("estimator"))))
    print()
    print("\n".join(task_by_data(tasks, options("data"))))


def task_by_estimator(tasks: list[str], estimators: list[str]) -> list[str]:
    lines = ["task × estimator (● the task's default, ✓ runs, ~ with some settings, ✗ not: see the notes):"]
    first = max(map(len, tasks)) + 2
    columns = [max(len(name), 5) + 2 for name in estimators]
    lines.append((" " * (first + 2) + "".join(f"{name:^{width}s}" for name, width in zip(estimators, columns))).rstrip())
    notes = []
    for task in tasks:
        cells = [f"{_estimator_cell(task, estimator):^{width}s}" for estimator, width in zip(estimators, columns)]
        lines.append(f"  {task:{first}s}{''.join(cells)}".rstrip())
        notes += [_wrapped(f"  {task} × {estimator}: {condition(task, estimator) or lacking(task, estimator)}", 4)
                  for estimator in estimators if lacking(task, estimator)]
    return lines + ["", *notes]


def _estimator_cell(task: str, estimator: str) -> str:
    if condition(task, estimator):
        return "~"
    if lacking(task, estimator):
        return "✗"
    return "●" if declared(task_class(task), "default_estimator") == estimator else "✓"


def task_by_data(tasks: list[str], data: list[str]) -> list[str]:
    """Data options as rows (there are more of them than tasks), each with its kind."""
    lines = ["task × data (✓ the task learns from it, ✗ not, · the task takes no data):"]
    first, kind_width = max(map(len, data)) + 2, max(map(len, DATA_KINDS)) + 2
    columns = [len(task) + 2 for task in tasks]
    header = "".join(f"{task:^{width}s}" for task, width in zip(tasks, columns))
    lines.append(f"{' ' * (first + 2)}{'kind':{kind_width}s}{header}".rstrip())
    for name in data:
        cells = [f"{_data_cell(task, name):^{width}s}" for task, width in zip(tasks, columns)]
        lines.append(f"  {name:{first}s}{data_kind(name):{kind_width}s}{''.join(cells)}".rstrip())
    return lines + ["", *(_wrapped(f"  {kind}: {meaning}", 4) for kind, meaning in DATA_KINDS.items())]


def _data_cell(task: str, data: str) -> str:
    if not declared(task_class(task), "data_kinds"):
        return "·"
    return "✗" if why_unsupported_data(task, data) else "✓"


def _wrapped(line: str, indent: int) -> str:
    return textwrap.fill(line, WIDTH, subsequent_indent=" " * indent, break_on_hyphens=False)
