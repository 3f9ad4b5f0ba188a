"""`metaopt gradcheck [overrides]`: each estimator's draws against the exact meta-gradient,
at the task's initial meta-parameters."""
import json
import logging
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..build import build, first_problem, pick_device
from ..config.commands import Precision
from ..errors import reports_user_errors
from ..gradcheck import DrawStats, check_gradcheck_config, compared_precisions, exact_gradient
from ..memory import measure_peak
from ..precision import estimate_at, matmuls
from ..progress import progress, showing_progress
from ..table import format_table, mebibytes
from ..timing import timed
from ..tracking.command_run import command_run
from ..tracking.curves import gradcheck_curves
from ..variants import chosen_names, compose_variant, usable_estimator
from ..write_faults import replace_file

FIGURES = ("cosine", "rel_error", "variance", "seconds", "peak_mem_bytes")

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="pkg://metaopt_cli.conf", config_name="gradcheck")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    check_gradcheck_config(cfg, hydra_cfg.runtime.choices)
    choices, options, trainer = hydra_cfg.runtime.choices, cfg.gradcheck, cfg.trainer
    names = chosen_names(options.estimators, choices)
    device = pick_device(trainer.device)
    precisions = compared_precisions(options.precisions, trainer, device)
    _, meta_params, problem, generator = first_problem(cfg, device)
    # Built before the reference's long unroll, so that a bad value fails first; an estimator
    # that cannot run here gets a row saying why.
    usable = {name: usable_estimator(choices["task"], name, compose_variant(name), problem.horizon) for name in names}
    reference = build(compose_variant(options.reference).estimator)
    # Every estimate the command makes: the exact one, then each measurement's warm-up and draws.
    estimates = 1 + sum(options.samples + 1 for _, reason in usable.values() if reason is None) + 2 * len(precisions)
    with showing_progress(trainer.progress), progress(desc="gradcheck: estimates", total=estimates) as bar:
        bar.set_postfix_str(f"exact ({options.reference})")
        with matmuls(Precision.fp32):
            exact = exact_gradient(reference, options.reference, problem, meta_params, generator)
        bar.update()
        rows = []
        for name in names:  # each estimator at trainer.precision, as `metaopt train` would run it
            estimator, reason = usable[name]
            row = _row(name, options.reference, trainer.precision, samples=0)
            if reason is None:
                bar.set_postfix_str(name)
                draw = lambda i: estimate_at(estimator, trainer.precision, problem, meta_params,  # noqa: E731
                                           torch.Generator(device).manual_seed(trainer.seed + 1 + i))
                row.update(samples=options.samples, **_measure(draw, exact, options.samples, device, bar))
            rows.append(row)
        for kind in precisions:  # the exact meta-gradient at each precision: what it costs on this task
            bar.set_postfix_str(f"{options.reference} in {Precision(kind).name}")
            draw = lambda i: estimate_at(reference, kind, problem, meta_params, generator)  # noqa: E731
            rows.append({**_row(options.reference, options.reference, kind, samples=1),
                         **_measure(draw, exact, 1, device, bar)})
    out_dir = Path(hydra_cfg.runtime.output_dir)
    replace_file(out_dir / "gradcheck.json", lambda file: json.dump(rows, file, indent=2))
    log.info(f"── metaopt gradcheck: {choices['task']} at its initial meta-parameters, each estimator in "
             f"{Precision(trainer.precision).name} against {options.reference} in fp32 ──")
    log.info(_table(rows[:len(names)], {name: reason for name, (_, reason) in usable.items()}))
    if precisions:
        log.info(f"── {options.reference}'s meta-gradient at each precision, against fp32's ──")
        log.info(_precision_table(rows[len(names):]))
    log.info(f"run dir  {out_dir}")
    with command_run(cfg, "gradcheck") as tracker:
        tracker.log_curves(None, gradcheck_curves(rows))


def _row(estimator: str, reference: str, kind, samples: int) -> dict:
    return {"estimator": estimator, "reference": reference, "precision": Precision(kind).name, "samples": samples,
            **dict.fromkeys(FIGURES)}


def _measure(draw, exact, samples: int, device: torch.device, bar) -> dict:
    """Draws 0..samples-1 against the exact gradient, their mean seconds, and the peak memory
    of one draw (measured first, which also warms up); `bar` counts each estimate."""
    _, peak = measure_peak(lambda: draw(0), device)
    bar.update()
    stats, seconds = DrawStats(exact), 0.0
    for i in range(samples):
        grads, took = timed(lambda: draw(i), device)
        stats.add(grads)
        seconds += took
        bar.update()
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


def _precision_table(rows: list[dict]) -> str:
    lines = [[row["precision"], f"{row['rel_error']:.3e}", f"{row['cosine']:.6f}", f"{row['seconds']:.3f}",
              mebibytes(row["peak_mem_bytes"])] for row in rows]
    return format_table(["precision", "rel_error", "cosine", "seconds", "peak MiB"], lines)
