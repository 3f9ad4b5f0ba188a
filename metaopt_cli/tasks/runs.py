"""Inner problems that train B networks at once, each on minibatches of its own."""
from dataclasses import replace


class NetworkRuns:
    """For a problem dataclass with fields `init_params` (B initialisations, stacked) and
    `batches` (int64 [K, B, batch]: each run's minibatch at each step): its B runs as the
    meta-batch that ranks and estimator.stagger split, every run scored on the same data."""

    @property
    def meta_batch(self) -> int:
        return self.batches.shape[1]

    def select(self, runs: range):
        """The runs `runs` alone."""
        return replace(self, init_params={name: value[runs.start:runs.stop] for name, value in self.init_params.items()},
                       batches=self.batches[:, runs.start:runs.stop])
