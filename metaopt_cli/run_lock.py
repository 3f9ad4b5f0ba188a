"""One process at a time owns a run directory: two writing one checkpoint and one
metrics.jsonl would interleave their steps."""
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

FILENAME = "run.lock"


@contextmanager
def run_lock(run_dir: Path):
    """Held while the run lives. flock belongs to the open file, so the OS releases it when the
    process ends in any way (kill -9 included): a stale lock file never blocks a later resume."""
    path = run_dir / FILENAME
    with path.open("a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            owner = file.read().strip()
            raise UserError(f"{run_dir} is in use by another metaopt process{f' (pid {owner})' if owner else ''}: "
                            "wait for it to finish or stop it, then run again") from None
        file.truncate(0)
        file.write(f"{os.getpid()}\n")
        file.flush()
        yield
