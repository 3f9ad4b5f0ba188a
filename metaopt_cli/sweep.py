"""A sweep runs every point: a job's user error is kept and reported when the sweep ends,
one line per failed job, instead of ending the sweep at the first point that fails."""
import functools
import sys
from typing import Any, Callable, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from .errors import as_user_error, reports_user_errors

T = TypeVar("T")

# Launchers that run the jobs in this process, where a failure can be kept for the end. Any
# other (joblib, submitit) gets the error raised, and reports the failed job itself.
IN_PROCESS = ("hydra._internal.core_plugins.basic_launcher.BasicLauncher",)

swept_keys: set[str] = set()  # the keys the sweep varies, set by the command line
jobs: list[int] = []  # the numbers of the jobs run in this process
failures: list[str] = []


def reports_job_errors(command: Callable[..., T]) -> Callable[..., T]:
    """A UserError (or a failed allocation) is one `error:` line and status 2 for a single run;
    in a sweep, the job's failure is kept and the sweep goes on."""
    single = reports_user_errors(command)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T | None:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN or hydra_cfg.launcher._target_ not in IN_PROCESS:
            return single(*args, **kwargs)
        jobs.append(hydra_cfg.job.num)
        try:
            return command(*args, **kwargs)
        except Exception as error:
            user_error = as_user_error(error)
            if user_error is None:
                raise
            failures.append(f"#{hydra_cfg.job.num} ({_point(list(hydra_cfg.overrides.task))}): {user_error}")
            return None

    return wrapper


def exit_if_jobs_failed() -> None:
    """After the sweep: one line per failed job, and status 2."""
    for failure in failures:
        print(f"error: {len(failures)} of {len(jobs)} jobs failed: {failure}", file=sys.stderr)
    if failures:
        sys.exit(2)


def _point(overrides: list[str]) -> str:
    """The job's values of the swept keys: what tells it apart from the other jobs."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    shown = [o.input_line for o in parsed if o.key_or_group in swept_keys]
    return " ".join(shown or overrides)
