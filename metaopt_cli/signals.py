"""SIGTERM, SIGINT and SIGUSR2 (SLURM's warning before a time limit or preemption) ask the run
to stop after the current meta-step, with a checkpoint."""
import signal
from contextlib import contextmanager


class StopRequest:
    def __init__(self):
        self.signal: int | None = None

    def __call__(self, signum, frame) -> None:
        self.signal = signum

    @property
    def requested(self) -> bool:
        return self.signal is not None


@contextmanager
def stop_on_signals():
    request = StopRequest()
    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
