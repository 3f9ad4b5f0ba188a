"""Which summary keys the table shows: the ones asked for, else the objective-like ones."""
import re

from ..errors import UserError
from .runs import Run

BOOKKEEPING = ("steps", "wall_seconds", "peak_mem_bytes", "ranks")  # every summary has them; not results
SPREADS = ("_std", "_ci95")  # a spread within one run, which the table's interval over seeds replaces
OBJECTIVE_LIKE = re.compile(r"(?:^|_)(?:acc|loss|mse)(?:_|$)")


def reported(runs: list[Run]) -> list[str]:
    """The numeric keys of the finished runs' summaries, in their order (null: a non-finite value)."""
    return list(dict.fromkeys(key for run in runs if run.summary is not None for key, value in run.summary.items()
                              if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))))


def chosen_metrics(runs: list[Run], asked: list[str] | None) -> list[str]:
    """`asked`, each reported by some run; by default the runs' objective (summary.json's
    `objective` names it, where the run recorded one) first, then every accuracy, loss or MSE."""
    keys = reported(runs)
    if asked is not None:
        unknown = [key for key in asked if key not in keys]
        if unknown and keys:  # before any run has finished there is nothing to check against
            raise UserError(f"no run reports {', '.join(unknown)}: choose --metrics among {', '.join(keys)}")
        return asked
    objectives = [run.summary["objective"] for run in runs
                  if run.summary is not None and isinstance(run.summary.get("objective"), str)]
    results = [key for key in keys if key not in BOOKKEEPING and not key.endswith(SPREADS)]
    return list(dict.fromkeys([key for key in objectives if key in keys]
                              + ([key for key in results if OBJECTIVE_LIKE.search(key)] or results)))
