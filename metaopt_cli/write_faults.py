"""Faults while writing a run's files (disk full, a read-only or forbidden folder, a name too
long) become one line naming the file and what to do, instead of a traceback."""
import errno
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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


def replace_file(path: Path, write: Callable[[IO], None], binary: bool = False) -> None:
    """Write `path` whole or not at all: into a file beside it, flushed to disk, then renamed
    over it. A crash or kill at any moment leaves the old file or the new one, and a reader (a
    sweep's `metaopt compare`, a resume) never finds half of one. A file that failed half-way
    (a full disk) is removed."""
    tmp = path.with_name(path.name + ".tmp")
    with writing(tmp):
        try:
            with tmp.open("wb" if binary else "w") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
