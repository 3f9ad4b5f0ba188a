"""`metaopt bench [overrides]`: seconds and peak memory of one meta-gradient estimate per
estimator, as the horizon K grows."""
import json
import logging
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..bench import check_bench_config, measure
from ..bench_plot import save_bench_plot
from ..build import first_problem, pick_device
from ..errors import reports_user_errors
from ..precision import estimate_at
from ..pictures import run_title, titled_pictures
from ..progress import progress, showing_progress
from ..table import format_table, mebibytes
from ..tracking.command_run import command_run
from ..tracking.curves import bench_curves
from ..write_faults import replace_file
from ..variants import chosen_names, compose_variant, usable_estimator

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="pkg://metaopt_cli.conf", config_name="bench")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    check_bench_config(cfg, hydra_cfg.runtime.choices)
    choices, options, trainer = hydra_cfg.runtime.choices, cfg.bench, cfg.trainer
    names = chosen_names(options.estimators, choices)
    device = pick_device(trainer.device)
    rows = []
    cells = len(options.horizons) * len(names)
    with showing_progress(trainer.progress), progress(desc="bench: cells", total=cells) as bar:
        for horizon in options.horizons:
            configs = [compose_variant(name, f"task.horizon={horizon}") for name in names]
            # A horizon's cells differ only in the estimator: one task and one problem for all.
            _, meta_params, problem, _ = first_problem(configs[0], device)
            for name, config in zip(names, configs):
                bar.set_postfix_str(f"{name} at K={horizon}")
                estimator, reason = usable_estimator(choices["task"], name, config, horizon)
                if reason is None:
                    estimate = lambda: estimate_at(  # noqa: E731
                        estimator, trainer.precision, problem, meta_params,
                        torch.Generator(device).manual_seed(trainer.seed + 1))
                    rows.append({"estimator": name, "horizon": horizon, **measure(estimate, options.repeats, device)})
                else:
                    log.info(f"skipped {name} at K={horizon}: {reason}")
                bar.update()
    rows.sort(key=lambda row: names.index(row["estimator"]))  # stable: each estimator's horizons stay in order
    out_dir = Path(hydra_cfg.runtime.output_dir)
    replace_file(out_dir / "bench.json", lambda file: json.dump(rows, file, indent=2))
    with titled_pictures(run_title(choices, estimator=", ".join(names))):
        save_bench_plot(rows, out_dir / "bench.png")
    log.info(f"── metaopt bench: {choices['task']} on {device}, one meta-gradient estimate ──")
    cells = [[row["estimator"], str(row["horizon"]), f"{row['seconds']:.4f}", mebibytes(row["peak_mem_bytes"])]
             for row in rows]
    log.info(format_table(["estimator", "K", "seconds", "peak MiB"], cells))
    log.info(f"run dir  {out_dir}")
    with command_run(cfg, "bench") as tracker:
        tracker.log_curves(None, bench_curves(rows))
        tracker.log_pictures(None, [out_dir / "bench.png"])
