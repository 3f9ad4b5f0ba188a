"""metrics.jsonl: one JSON object per logged meta-step, read by scripts and plots."""
import json
import os
from pathlib import Path

from ..errors import UserError
from ..summary import strict_json_line
from ..write_faults import replace_file, writing


class MetricsFile:
    def __init__(self, path: Path, resume_step: int):
        """Open for appending; a resumed run drops lines logged after its checkpoint, so
        the file ends up as an uninterrupted run's would."""
        self.path = path
        if path.exists():
            records = read_records(path)
            if any(record["step"] > resume_step for record in records) or _ends_mid_line(path):
                _replace(path, [record for record in records if record["step"] <= resume_step])
        with writing(path):
            self.file = path.open("a")

    def write(self, record: dict) -> None:
        with writing(self.path):
            self.file.write(strict_json_line(record))
            self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_records(path: Path) -> list[dict]:
    """The file's records; a last line cut short (the process killed mid-write) is dropped."""
    if not path.is_file():
        raise UserError(f"{path} is not a file: move it away, or start a new run")
    lines = path.read_text().split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            if number == len(lines):  # no newline after it: the write never finished
                break
            raise UserError(f"{path} line {number} is not JSON: the file is damaged; "
                            "delete that line or start a new run") from None
        if record is not None:
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise UserError(f"{path} line {number} is not a metaopt record (no step): the file is damaged; "
                                "delete that line or start a new run")
            records.append(record)
    return records


def _ends_mid_line(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() == 0:
            return False
        file.seek(-1, os.SEEK_END)
        return file.read(1) != b"\n"


def _replace(path: Path, records: list[dict]) -> None:
    """Never rewritten in place: replaced whole by the kept lines."""
    replace_file(path, lambda file: file.writelines(strict_json_line(record) for record in records))
