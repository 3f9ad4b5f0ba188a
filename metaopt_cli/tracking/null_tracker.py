"""logger=none: no dashboard."""
from pathlib import Path


class NullTracker:
    def start(self, config: dict, run_dir: Path, name: str, default_group: str, run_id: str | None) -> None:
        pass

    @property
    def run_id(self) -> None:
        return None

    def log(self, step: int, metrics: dict) -> None:
        pass

    def log_pictures(self, step: int, paths: list[Path]) -> None:
        pass

    def summary(self, values: dict) -> None:
        pass

    def finish(self, failed: bool) -> None:
        pass
