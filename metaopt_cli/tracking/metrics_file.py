"""metrics.jsonl: one JSON object per logged meta-step, read by scripts and plots."""
import json
from pathlib import Path


class MetricsFile:
    def __init__(self, path: Path, resume_step: int):
        """Open for appending; a resumed run drops lines logged after its checkpoint, so
        the file ends up as an uninterrupted run's would."""
        self.path = path
        if path.exists():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        self.file = path.open("a")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
