"""The terminal's side of the job log (conf/hydra/job_logging/metaopt.yaml)."""
import logging

from tqdm import tqdm

# `extra=` of a record for <run dir>/<command>.log alone: the terminal shows it another way (the
# progress bar, an `error:` line on stderr).
FILE_ONLY = {"file_only": True}


class TerminalFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


class TerminalHandler(logging.StreamHandler):
    """Writes above a running progress bar instead of through it (tqdm.write clears the bars,
    writes, and draws them again); with no bar, as a StreamHandler does."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # noqa: BLE001 -- logging's own contract: a failed write is reported, never raised
            self.handleError(record)
