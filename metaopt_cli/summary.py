"""summary.json and the one-screen summary printed at the end of a run."""
import json
from pathlib import Path

import torch
from omegaconf import DictConfig

REPORTED_GROUPS = ("task", "estimator", "backbone", "data")  # the choices a summary names


def finish_run(cfg: DictConfig, choices: dict, run_dir: Path, steps: int, wall: float, peak: int | None,
               device: torch.device, results: dict, tracker) -> dict:
    summary = {
        **{group: choices[group] for group in REPORTED_GROUPS},
        "steps": steps,
        "wall_seconds": round(wall, 3),
        "peak_mem_bytes": peak,
        "device": str(device),
        **results,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    tracker.summary(summary)
    print(format_summary(summary, run_dir))
    return summary


def format_summary(summary: dict, run_dir: Path) -> str:
    width = max(len(key) for key in summary)
    lines = [f"── metaopt: {summary['task']} × {summary['estimator']} ──"]
    for key, value in summary.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {shown}")
    lines.append(f"  {'run dir':<{width}}  {run_dir}")
    return "\n".join(lines)
