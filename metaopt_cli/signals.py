"""SIGTERM, SIGINT and SIGUSR2 (SLURM's warning before a time limit or preemption) ask the run
to stop after the current meta-step, with a checkpoint."""
import signal
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class StopRequest:
    def __init__(self):
        self.signal: int | None = None
        self.previous: dict[int, object] = {}  # the handlers in place before the run's

    def __call__(self, signum, frame) -> None:
        self.signal = signum

    def hand_over(self, signum: int) -> None:
        """Once the checkpoint is saved, the signal goes on to a handler that was there before
        the run's, if another program put one there: submitit's requeues a preempted SLURM job,
        which then resumes from the checkpoint in the same run directory."""
        handler = self.previous.get(signum)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signum, None)


@contextmanager
def stop_on_signals():
    request = StopRequest()
    request.previous = {sig: signal.signal(sig, request) for sig in SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in request.previous.items():
            signal.signal(sig, handler)
