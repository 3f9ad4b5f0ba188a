"""The one exception type that means "the user asked for something we cannot do"."""
import functools
import logging
import re
import sys
from typing import Any, Callable, NoReturn, TypeVar


from .job_log import FILE_ONLY

T = TypeVar("T")
log = logging.getLogger(__name__)

# What sizes a run's memory, in the order people usually shrink it.
MEMORY_KNOBS = (
    "trainer.meta_batch, task.horizon (or estimator=tbptt with a smaller estimator.truncation), "
    "the backbone's size, or the task's batch sizes"
)


class UserError(Exception):
    """A problem the user can fix: the CLI prints `error: <message>` and exits with status 2.

    The message is one line and says what to change.
    """


def reports_user_errors(command: Callable[..., T]) -> Callable[..., T]:
    """Turn a UserError raised anywhere below `command` into one `error:` line and status 2,
    and so an allocation that failed for want of memory, naming the settings that size it."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            user_error = as_user_error(error)
            if user_error is None:
                raise
            log.error(f"error: {user_error}", extra=FILE_ONLY)  # the job log says how the run ended
            fail(str(user_error))

    return wrapper


def as_user_error(error: Exception) -> UserError | None:
    """The UserError that `error` is, or that a failed allocation becomes; None for any other."""
    if isinstance(error, UserError):
        return error
    message = out_of_memory(error)
    return None if message is None else UserError(f"{message}: shrink what sizes it: {MEMORY_KNOBS}")


def out_of_memory(error: BaseException | None) -> str | None:
    """What ran out, and how much was asked for, when `error` or an error it wraps (Hydra's
    instantiate wraps what a constructor raises) is a failed allocation; else None."""
    # Looked up, not imported: an error of torch's exists only where torch is imported already,
    # and `metaopt --help` answers without importing it (seconds).
    torch = sys.modules.get("torch")
    while error is not None:
        if torch is not None and isinstance(error, torch.OutOfMemoryError):
            size = re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]?i?B)", str(error))
            return f"out of GPU memory{f' allocating {size.group(1)}' if size else ''}"
        # torch's CPU allocator reports failure as a plain RuntimeError; numpy and Python raise MemoryError.
        if isinstance(error, MemoryError) or "DefaultCPUAllocator: can't allocate memory" in str(error):
            size = re.search(r"allocate (\d+) bytes", str(error))
            return f"out of CPU memory{f' allocating {int(size.group(1)) / 2**30:.1f} GiB' if size else ''}"
        error = error.__cause__ or error.__context__
    return None


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
