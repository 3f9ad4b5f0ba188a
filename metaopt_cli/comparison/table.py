"""The comparison as text for the terminal, as compare.md and as compare.csv."""
import csv
import io

from ..table import format_table
from .groups import Group, distinguishing, label, shared
from .interval import SPREADS, Estimate, shown

UNFINISHED = ("running", "stopped")


def caption(groups: list[Group], spread: str = "ci95", code=str) -> list[str]:
    """`spread`: what ± stands for (SPREADS); `code`: how the settings are set off (Markdown's code spans)."""
    runs = sum(len(group.runs) for group in groups)
    lines = [f"{runs} run{'s' * (runs != 1)} in {len(groups)} group{'s' * (len(groups) != 1)} "
             f"(runs that differ only in trainer.seed); mean ± {SPREADS[spread]}"]
    if common := shared(groups):
        lines.append(f"same in every run: {code(' '.join(common))}")
    return lines


def text_table(groups: list[Group], metrics: list[str], spread: str = "ci95") -> str:
    header, rows = _cells(groups, metrics, spread)
    return format_table(header, rows)


def markdown_table(groups: list[Group], metrics: list[str], spread: str = "ci95") -> str:
    header, rows = _cells(groups, metrics, spread)
    lines = [_markdown_row(header), "| --- " * len(header) + "|", *map(_markdown_row, rows)]
    return "\n".join([*caption(groups, spread, lambda text: f"`{text}`"), "", *lines]) + "\n"


def csv_table(groups: list[Group], metrics: list[str], spread: str = "ci95") -> str:
    """Full precision for scripts: per metric its mean, its spread (`<metric>_ci95`: the CI's
    half-width, or `<metric>_std`; empty from one seed) and how many runs it is over."""
    keys = distinguishing(groups)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    parts = ("mean", spread, "n")
    writer.writerow(["group", "n", *UNFINISHED, *(f"{metric}_{part}" for metric in metrics for part in parts)])
    for group in groups:
        figures = []
        for metric in metrics:
            value = group.metric(metric)
            half = None if value is None else value.spread(spread)
            figures += ["", "", 0] if value is None else [value.mean, "" if half is None else half, value.n]
        writer.writerow([label(group, keys), len(group.finished), *map(group.count, UNFINISHED), *figures])
    return out.getvalue()


def _cells(groups: list[Group], metrics: list[str], spread: str) -> tuple[list[str], list[list[str]]]:
    """A column of unfinished runs only while some are."""
    keys = distinguishing(groups)
    unfinished = any(group.count(state) for group in groups for state in UNFINISHED)
    header = ["group", "n", *(["unfinished"] * unfinished), *metrics]
    rows = []
    for group in groups:
        n = len(group.finished)
        status = [", ".join(f"{count} {state}" for state in UNFINISHED if (count := group.count(state)))]
        rows.append([label(group, keys), str(n), *(status * unfinished),
                     *(_cell(group.metric(metric), n, spread) for metric in metrics)])
    return header, rows


def _cell(value: Estimate | None, n: int, spread: str) -> str:
    if value is None:
        return "–"
    # Runs that reported no value (null: non-finite) leave fewer seeds than the group's n.
    seeds = f" ({value.n} seed{'s' * (value.n != 1)})" if value.n != n or value.n == 1 else ""
    return shown(value, spread) + seeds


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
