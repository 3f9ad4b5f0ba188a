"""One rank of a job started as several: by torchrun, before Hydra, or as a submitit job's tasks.

Rank 0 speaks for the job on the terminal; the other ranks write what they print to
`<run dir>/logs/rank<N>.log`. Under torchrun every rank runs the same command line, and each
would compose its own timestamped `outputs/<date>/<time>/`: all take rank 0's, and until it is
known the other ranks write to a temporary file. submitit's tasks start in their sweep job's
folder already.
"""
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import distributed
from .distributed import World
from .errors import fail
from .run_config import hydra_string

_early: str | None = None  # where a rank other than 0 writes until the run directory is known


def start_rank(command: str, multirun: bool, world: World) -> None:
    if command != "train":
        fail(f"only `metaopt train` runs as several ranks: run `metaopt {command}` as one process")
    if multirun:
        fail("-m sweeps one job per point, and torchrun starts one job as several ranks: sweep with a launcher "
             "(hydra/launcher=slurm, whose jobs may each have several ranks), or drop -m")
    if not world.main:
        global _early
        with tempfile.NamedTemporaryFile(prefix=f"metaopt-rank{world.rank}-", suffix=".log", delete=False) as file:
            _early = file.name
        atexit.register(_discard_early)  # a start-up that fails leaves no file behind
        _redirect_output(_early)
    distributed.join(world)


def agree_run_dir(overrides: list[str], resolved: str, world: World) -> list[str]:
    """The command line, placed in rank 0's run directory; ranks other than 0 leave Hydra's
    `.hydra/` and job log to rank 0, and from now on write to their own log there."""
    run_dir = world.broadcast_text(resolved if world.main else None)
    placed = [line for line in overrides if not line.startswith("hydra.run.dir=")]
    placed.append(f"hydra.run.dir={hydra_string(run_dir)}")
    if world.main:
        return placed
    log = _rank_log(Path(run_dir), world)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(_early, "rb") as file, open(log, "ab") as out:
        shutil.copyfileobj(file, out)
    _redirect_output(str(log))
    _discard_early()
    return [*placed, "hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


def _discard_early() -> None:
    if _early is not None and os.path.exists(_early):
        os.unlink(_early)


def join_tasks(world: World, run_dir: Path) -> None:
    """A submitit job's task, in the job's run directory."""
    if not world.main:
        _redirect_output(str(_rank_log(run_dir, world)))
    distributed.join(world)


def _rank_log(run_dir: Path, world: World) -> Path:
    log = run_dir / "logs" / f"rank{world.rank}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    return log


def _redirect_output(path: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, sys.stdout.fileno())
    os.dup2(fd, sys.stderr.fileno())
    os.close(fd)
