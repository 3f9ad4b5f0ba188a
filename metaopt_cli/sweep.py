"""A sweep runs every point: a job's user error is kept and reported when the sweep ends,
one line per failed job, instead of ending the sweep at the first point that fails."""
import dataclasses
import functools
import importlib
import logging
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode

from .errors import UserError, as_user_error, reports_user_errors
from .job_log import FILE_ONLY
from .run_config import hydra_string

T = TypeVar("T")
log = logging.getLogger(__name__)

# Launchers that run the jobs in this process, where a job's failure is kept as it happens.
IN_PROCESS = ("hydra._internal.core_plugins.basic_launcher.BasicLauncher",)
# Launchers that run each job in a process of its own and keep what it returns when it ends
# (hydra_plugins/metaopt_submitit, the `slurm` extra): a failed job returns its failure.
RETURNING = tuple(f"hydra_plugins.metaopt_submitit._launchers.{name}" for name in ("LocalLauncher", "SlurmLauncher"))
# Under any other (joblib, the submitit plugin's own configs), a failed job ends its process
# with its `error:` line and status 2, and the launcher reports that in its own way.

swept_keys: set[str] = set()  # the keys the sweep varies, set by the command line
jobs: list[int] = []  # the numbers of the jobs that ended
failures: list[str] = []


@dataclasses.dataclass(frozen=True)
class JobFailed:
    """What a job returns in place of its result when its user error is kept: plain data, so
    that it comes back whole from a job that ran in another process."""
    message: str

    def __str__(self) -> str:  # what Optuna's sweeper logs of a result it cannot rank
        return f"failed: {self.message}"


def reports_job_errors(command: Callable[..., T]) -> Callable[..., T]:
    """A UserError (or a failed allocation) is one `error:` line and status 2 for a single run;
    in a sweep, the job's failure is kept and the sweep goes on."""
    single = reports_user_errors(command)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T | JobFailed:
        hydra_cfg = HydraConfig.get()
        launcher = hydra_cfg.launcher._target_
        if hydra_cfg.mode != RunMode.MULTIRUN or launcher not in (*IN_PROCESS, *RETURNING):
            return single(*args, **kwargs)
        try:
            outcome = command(*args, **kwargs)
        except Exception as error:
            user_error = as_user_error(error)
            if user_error is None and launcher in RETURNING:
                user_error = _not_requeued(error, hydra_cfg.sweep.dir)
            if user_error is None:
                raise
            log.error(f"error: {user_error}", extra=FILE_ONLY)  # the sweep reports it when all its jobs ended
            outcome = JobFailed(str(user_error))
        if launcher in IN_PROCESS:
            _keep(hydra_cfg.job.num, list(hydra_cfg.overrides.task), outcome)
        return outcome

    return wrapper


def prepare_launcher(target: str) -> None:
    """Ready the command line's launcher before Hydra starts it: Hydra instantiates only the
    launchers it registered, and its plugin scan skips metaopt's; SLURM's submits with sbatch
    and srun, and without them fails with a traceback."""
    if target not in RETURNING:
        return
    module, _, name = target.rpartition(".")
    Plugins.instance().register(getattr(importlib.import_module(module), name))
    if name == "SlurmLauncher" and shutil.which("srun") is None:
        raise UserError("hydra/launcher=slurm submits to SLURM, whose srun is not on this machine: run the sweep "
                        "on the cluster's login node, or try it here with hydra/launcher=local")


def keep_outcome(job: JobReturn) -> None:
    """Keep the outcome of a job that ran in another process. (One that raised something other
    than a user error ends the sweep when Hydra's sweeper reads it, as in this process.)"""
    outcome = job.return_value if job.status == JobStatus.COMPLETED else None
    _keep(job.hydra_cfg.hydra.job.num, list(job.overrides), outcome)


def exit_if_jobs_failed() -> None:
    """After the sweep: one line per failed job, and status 2."""
    for failure in failures:
        print(f"error: {len(failures)} of {len(jobs)} jobs failed: {failure}", file=sys.stderr)
    if failures:
        sys.exit(2)


def _not_requeued(error: Exception, sweep_dir: str) -> UserError | None:
    """submitit's refusal to requeue a job that reached its time limit hydra.launcher.max_num_timeout
    times already, raised in the job when SLURM signals the next: a user error, since the
    sweep's own command continues it."""
    from submitit.core.utils import UncompletedJobError  # installed with the launchers that raise it

    if not isinstance(error, UncompletedJobError):
        return None
    again = shlex.quote("hydra.sweep.dir=" + hydra_string(str(Path(sweep_dir).absolute())))
    return UserError(f"submitit did not requeue it ({str(error).rstrip('.')}); its run directory keeps its last "
                     f"checkpoint: run the sweep again with {again} to continue each job from its own, with a longer "
                     "hydra.launcher.timeout_min or a larger hydra.launcher.max_num_timeout")


def _keep(num: int, overrides: list[str], outcome: Any) -> None:
    jobs.append(num)
    if isinstance(outcome, JobFailed):
        failures.append(f"#{num} ({_point(overrides)}): {outcome.message}")


def _point(overrides: list[str]) -> str:
    """The job's values of the swept keys: what tells it apart from the other jobs."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    shown = [o.input_line for o in parsed if o.key_or_group in swept_keys]
    return " ".join(shown or overrides)
