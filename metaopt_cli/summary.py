"""summary.json and the one-screen summary printed at the end of a run."""
import json
import logging
import math
from pathlib import Path

import torch
from omegaconf import DictConfig

from .tracking.namespaces import Results
from .write_faults import replace_file

log = logging.getLogger(__name__)
REPORTED_GROUPS = ("task", "estimator", "backbone", "data")  # the choices a summary names


def finish_run(cfg: DictConfig, choices: dict, run_dir: Path, steps: int, wall: float, peak: int | None,
               device: torch.device, results: Results, tracker, ranks: int, objective: str) -> dict:
    path = run_dir / "summary.json"
    if peak is None and path.exists():
        # A resume with no meta-step left measured nothing; the run's peak is the one measured before.
        peak = _previous(path).get("peak_mem_bytes")
    facts = {
        **{group: choices[group] for group in REPORTED_GROUPS},
        "steps": steps,
        "wall_seconds": round(wall, 3),
        "peak_mem_bytes": peak,  # rank 0's, where several ranks ran
        "device": str(device),
        "ranks": ranks,
        "objective": objective,  # which figure a sweeper ranks the run by
    }
    summary = {**facts, **results.flat()}
    replace_file(path, lambda file: file.write(strict_json(summary)))
    tracker.log_results(steps, facts, results)
    log.info(format_summary(summary, run_dir))
    return summary


def strict_json(report: dict) -> str:
    """JSON that every reader accepts: a statistic that came out NaN or infinite is null."""
    return json.dumps(_finite(report), indent=2, allow_nan=False) + "\n"


def strict_json_line(record: dict) -> str:
    """One line of metrics.jsonl, strict like summary.json."""
    return json.dumps(_finite(record), allow_nan=False) + "\n"


def format_summary(summary: dict, run_dir: Path) -> str:
    width = max(len(key) for key in summary)
    lines = [f"── metaopt: {summary['task']} × {summary['estimator']} ──"]
    for key, value in summary.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {shown}")
    lines.append(f"  {'run dir':<{width}}  {run_dir}")
    return "\n".join(lines)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _previous(path: Path) -> dict:
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # unreadable: this summary replaces it
    return previous if isinstance(previous, dict) else {}
