"""`metaopt gradcheck [overrides]`: each estimator's draws against the exact meta-gradient,
at the task's initial meta-parameters."""
import json
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..build import build, first_problem, pick_device
from ..errors import reports_user_errors
from ..gradcheck import DrawStats, check_gradcheck_config, exact_gradient
from ..memory import measure_peak
from ..table import format_table, mebibytes
from ..timing import timed
from ..variants import chosen_names, compose_variant, usable_estimator

FIGURES = ("cosine", "rel_error", "variance", "seconds", "peak_mem_bytes")


@hydra.main(version_base="1.3", config_path="pkg://metaopt_cli.conf", config_name="gradcheck")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    check_gradcheck_config(cfg, hydra_cfg.runtime.choices)
    choices, options, trainer = hydra_cfg.runtime.choices, cfg.gradcheck, cfg.trainer
    names = chosen_names(options.estimators, choices)
    device = pick_device(trainer.device)
    _, meta_params, problem, generator = first_problem(cfg, device)
    # Built before the reference's long unroll, so that a bad value fails first; an estimator
    # that cannot run here gets a row saying why.
    usable = {name: usable_estimator(choices["task"], name, compose_variant(name), problem.horizon) for name in names}
    reference = build(compose_variant(options.reference).estimator)
    exact = exact_gradient(reference, options.reference, problem, meta_params, generator)
    rows = []
    for name in names:
        estimator, reason = usable[name]
        row = {"estimator": name, "reference": options.reference, "samples": 0, **dict.fromkeys(FIGURES)}
        if reason is None:
            draw = lambda i: estimator.estimate(  # noqa: E731
                problem, meta_params, torch.Generator(device).manual_seed(trainer.seed + 1 + i))[0]
            row.update(samples=options.samples, **_measure(draw, exact, options.samples, device))
        rows.append(row)
    out_dir = Path(hydra_cfg.runtime.output_dir)
    (out_dir / "gradcheck.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"── metaopt gradcheck: {choices['task']} at its initial meta-parameters, "
          f"against {options.reference} ──")
    print(_table(rows, {name: reason for name, (_, reason) in usable.items()}))
    print(f"run dir  {out_dir}")


def _measure(draw, exact, samples: int, device: torch.device) -> dict:
    """Draws 0..samples-1 against the exact gradient, their mean seconds, and the peak memory
    of one draw (measured first, which also warms up)."""
    _, peak = measure_peak(lambda: draw(0), device)
    stats, seconds = DrawStats(exact), 0.0
    for i in range(samples):
        grads, took = timed(lambda: draw(i), device)
        stats.add(grads)
        seconds += took
    return {**stats.summary(), "seconds": seconds / samples, "peak_mem_bytes": peak}


def _table(rows: list[dict], reasons: dict) -> str:
    lines = []
    for row in rows:
        name = row["estimator"]
        if reasons[name]:
            lines.append([name, f"n/a: {reasons[name]}"])
        else:
            lines.append([name, f"{row['cosine']:.4f}", f"{row['rel_error']:.4f}", f"{row['variance']:.3g}",
                          f"{row['seconds']:.3f}", mebibytes(row["peak_mem_bytes"])])
    return format_table(["estimator", "cosine", "rel_error", "variance", "seconds", "peak MiB"], lines)
