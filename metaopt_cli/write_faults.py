"""Faults while writing a run's files (disk full, a read-only or forbidden folder, a name too
long) become one line naming the file and what to do, instead of a traceback."""
import errno
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

FIXES = {
    errno.ENOSPC: "free some space, or pass hydra.run.dir=<a folder on another disk>",
    errno.EDQUOT: "free some space, or pass hydra.run.dir=<a folder on another disk>",
    errno.EROFS: "pass hydra.run.dir=<a writable folder>",
    errno.EACCES: "pass hydra.run.dir=<a writable folder>",
    errno.EPERM: "pass hydra.run.dir=<a writable folder>",
    errno.ENAMETOOLONG: "pass a shorter hydra.run.dir",
}


@contextmanager
def writing(path: Path):
    """Around code that writes `path` (a file, or the run directory when the file is not known
    there); the OS's own file name wins when the error carries one. A fault on a file elsewhere
    (a dataset being read) is not this one's to explain."""
    try:
        yield
    except OSError as error:
        elsewhere = error.filename is not None and not Path(error.filename).absolute().is_relative_to(path.absolute())
        if error.errno not in FIXES or elsewhere:
            raise
        raise UserError(f"cannot write {error.filename or path} ({error.strerror}): {FIXES[error.errno]}") from None
