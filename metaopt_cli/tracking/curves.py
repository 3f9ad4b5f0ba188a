"""The numbers behind a picture, as rows of a dashboard table and the charts drawn from them, so
that a curve can be read, compared across runs and re-plotted there, not only looked at."""
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Curves:
    name: str  # the table's key on the dashboard, and the charts' prefix
    rows: list[dict]  # one dict per table row, all with the same keys
    x: str  # the column on the x axis (a line chart), or naming each bar (a bar chart)
    ys: tuple[str, ...]  # one chart per column
    series: str | None = None  # the column whose values split the rows into lines
    bars: bool = False

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0]) if self.rows else [self.x, *self.ys]


def beside(picture: Path) -> Curves | None:
    """The curves a picture was drawn from, where its task kept them beside it as JSON of the same
    name, {curve: [value after step 0, 1, …]} (learned_opt's meta_test.json); None where there are none."""
    path = picture.with_suffix(".json")
    try:
        series = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(series, dict) or not all(isinstance(values, list) for values in series.values()):
        return None
    rows = [{"step": step, "curve": name, "value": value}
            for name, values in series.items() for step, value in enumerate(values)]
    return Curves(picture.stem, rows, x="step", ys=("value",), series="curve")


def bench_curves(rows: list[dict]) -> Curves:
    """`metaopt bench`'s cells: seconds and peak memory against K, one line per estimator."""
    return Curves("bench", rows, x="horizon", ys=("seconds", "peak_mem_bytes"), series="estimator")


def gradcheck_curves(rows: list[dict]) -> Curves:
    """`metaopt gradcheck`'s rows: one bar per estimator (and per precision of the reference)."""
    labelled = [{"label": f"{row['estimator']} {row['precision']}", **row} for row in rows]
    return Curves("gradcheck", labelled, x="label", ys=("cosine", "rel_error"), bars=True)
