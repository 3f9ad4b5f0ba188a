"""logger=none: no dashboard."""
from pathlib import Path

from .curves import Curves
from .namespaces import Results


class NullTracker:
    def start(self, config: dict, run_dir: Path, name: str, default_group: str, run_id: str | None,
              job_type: str = "train") -> None:
        pass

    @property
    def run_id(self) -> None:
        return None

    def log(self, step: int, record: dict, learned=(), validated=()) -> None:
        pass

    def log_pictures(self, step: int | None, paths: list[Path]) -> None:
        pass

    def log_curves(self, step: int | None, curves: Curves) -> None:
        pass

    def log_results(self, step: int, facts: dict, results: Results) -> None:
        pass

    def log_checkpoint(self, run_dir: Path, step: int, choices: dict) -> None:
        pass

    def summary(self, values: dict) -> None:
        pass

    def finish(self, failed: bool) -> None:
        pass
