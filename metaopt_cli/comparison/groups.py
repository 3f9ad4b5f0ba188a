"""Runs that differ only in their seed make one group, named by what sets it apart from the others."""
import dataclasses

from .interval import Estimate, estimate
from .runs import SEED, Run


@dataclasses.dataclass(frozen=True)
class Group:
    settings: dict[str, str]  # key → `key=value` shared by its runs, the seed left out
    runs: list[Run]

    @property
    def finished(self) -> list[Run]:
        return [run for run in self.runs if run.summary is not None]

    def count(self, state: str) -> int:
        return sum(run.state == state for run in self.runs)

    def metric(self, key: str) -> Estimate | None:
        """Over the finished runs that report it (null: a value that came out non-finite)."""
        values = [run.summary[key] for run in self.finished
                  if isinstance(run.summary.get(key), (int, float)) and not isinstance(run.summary[key], bool)]
        return estimate([float(value) for value in values])

    def meta_loss(self) -> list[tuple[int, Estimate]]:
        """Step by step, over the runs that logged that step: a run in progress counts as far as it got."""
        steps = sorted({step for run in self.runs for step in run.meta_loss})
        return [(step, estimate([run.meta_loss[step] for run in self.runs if step in run.meta_loss]))
                for step in steps]


def group_runs(runs: list[Run]) -> list[Group]:
    """In the order of their first run."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        settings = {key: setting for key, setting in run.settings.items() if key != SEED}
        groups.setdefault(tuple(sorted(settings.items())), Group(settings, [])).runs.append(run)
    return list(groups.values())


def distinguishing(groups: list[Group]) -> list[str]:
    """The keys not set alike in every group, in the order the runs name them."""
    keys = dict.fromkeys(key for group in groups for key in group.settings)
    return [key for key in keys if len({group.settings.get(key) for group in groups}) > 1]


def shared(groups: list[Group]) -> list[str]:
    """The settings every group has alike (the sweep's fixed overrides)."""
    apart = set(distinguishing(groups))
    return [setting for key, setting in groups[0].settings.items() if key not in apart]


def label(group: Group, keys: list[str]) -> str:
    if not keys:
        return "all runs"
    return " ".join(group.settings.get(key, f"{key}=(default)") for key in keys)
