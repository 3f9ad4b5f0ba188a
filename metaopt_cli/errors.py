"""The one exception type that means "the user asked for something we cannot do"."""
import functools
import sys
from typing import Any, Callable, NoReturn, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem the user can fix: the CLI prints `error: <message>` and exits with status 2.

    The message is one line and says what to change.
    """


def reports_user_errors(command: Callable[..., T]) -> Callable[..., T]:
    """Turn a UserError raised anywhere below `command` into one `error:` line and status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except UserError as error:
            fail(str(error))

    return wrapper


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
