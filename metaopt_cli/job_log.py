"""The job log's code (conf/hydra/job_logging/metaopt.yaml): the records the terminal does not
show, the terminal's writes around a progress bar, and train.log's meta-loss lines."""
import logging

from tqdm import tqdm

# `extra=` of a record for <run dir>/<command>.log alone: the terminal shows it another way (the
# progress bar, an `error:` line on stderr).
FILE_ONLY = {"file_only": True}


class TerminalFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


class MetaLossLines:
    """The mean meta-loss and the outer lr in train.log every twentieth of the run (or every
    meta-step of a short one): the story the progress bar tells on the terminal."""

    def __init__(self, log: logging.Logger, meta_steps: int, lines: int = 20):
        self.log, self.meta_steps, self.every, self.losses = log, meta_steps, max(1, meta_steps // lines), []

    def add(self, step: int, meta_loss: float, outer_lr: float) -> None:
        self.losses.append(meta_loss)
        if step % self.every == 0 or step == self.meta_steps:
            self.log.info(f"meta-step {step}/{self.meta_steps}: meta-loss {sum(self.losses) / len(self.losses):.4f} "
                          f"(mean of {len(self.losses)}), outer lr {outer_lr:.4g}", extra=FILE_ONLY)
            self.losses.clear()


class TerminalHandler(logging.StreamHandler):
    """Writes above a running progress bar instead of through it (tqdm.write clears the bars,
    writes, and draws them again); with no bar, as a StreamHandler does."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # noqa: BLE001 -- logging's own contract: a failed write is reported, never raised
            self.handleError(record)
