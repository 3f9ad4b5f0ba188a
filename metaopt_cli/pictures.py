"""Every picture a command writes is saved here, titled with what made it (task × estimator ×
backbone, and the data): a picture that leaves its run directory (a slide, a W&B panel, a
folder of a sweep's pictures side by side) must still say which run it shows.

The command names its run once (`titled_pictures`); picture modules pass only what their
picture shows, so the task's contract (`save_pictures(θ, run_dir)`) stays as it is."""
import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs headless, on clusters and in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .compat import task_class  # noqa: E402
from .tasks.protocol import declared  # noqa: E402

_run_title = ContextVar("metaopt_run_title", default=None)


def run_title(choices: Mapping, estimator: str | None = None) -> str:
    """As in "distill × tbptt × mlp on digits", from a run's group choices; `estimator` names
    several where one picture compares them. A task that is its own data (influence) names no
    data, and one that builds its own network (nas, influence) no backbone."""
    task, estimator = choices["task"], estimator or choices["estimator"]
    cls = task_class(task)
    title = f"{task} × {estimator}"
    if "make_backbone" in inspect.signature(cls).parameters:
        title += f" × {choices['backbone']}"
    return f"{title} on {choices['data']}" if declared(cls, "data_kinds") else title


@contextmanager
def titled_pictures(title: str | None) -> Iterator[None]:
    token = _run_title.set(title)
    try:
        yield
    finally:
        _run_title.reset(token)


def save_figure(fig: Figure, path: Path, shows: str | None = None) -> None:
    """Write `fig` to `path` as PNG (whatever its name: a caller may write beside and rename) under
    the run's title, with `shows` (what the picture is) beneath it; the heading is also the PNG's
    Title, for tools that read metadata."""
    title = _run_title.get()
    heading = "\n".join(line for line in (title, shows) if line)
    if heading:
        fig.suptitle(heading)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100, metadata={"Title": heading} if heading else None)
    plt.close(fig)
