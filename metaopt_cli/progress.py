"""Progress bars (count, rate, ETA) for the waits outside meta-training's own bar: evaluation,
gradcheck, bench. A user who sees nothing for minutes takes the run for hung.

A command turns them on around what it runs (`trainer.progress`, on the main rank only: one
bar per job, not one per rank); the loops only name themselves, so a task used from Python or
from a test draws nothing unless asked."""
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm import tqdm

_shown = ContextVar("metaopt_progress_shown", default=False)


@contextmanager
def showing_progress(enabled: bool) -> Iterator[None]:
    token = _shown.set(bool(enabled))
    try:
        yield
    finally:
        _shown.reset(token)


def progress(iterable: Iterable | None = None, desc: str = "", total: int | None = None) -> tqdm:
    """`iterable` with a bar on stderr while progress is shown (without one, it is iterated as it
    is); with no iterable, a bar to `update()` by hand. Bars vanish when done: the summary that
    follows says what came of them."""
    return tqdm(iterable, desc=desc, total=total, disable=not _shown.get(), file=sys.stderr, leave=False,
                dynamic_ncols=True)
