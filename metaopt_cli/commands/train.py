"""`metaopt train [overrides]` and `metaopt train resume=<run dir>`."""
import math
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .. import distributed
from ..checkpoint import has_checkpoint
from ..distributed import LostRank
from ..launch import join_tasks
from ..pictures import run_title, titled_pictures
from ..progress import showing_progress
from ..run_config import record_overrides, resume_command
from ..run_lock import run_lock
from ..objective import objective_value
from ..sweep import JobFailed, reports_job_errors
from ..trainer import train
from ..write_faults import writing


@hydra.main(version_base="1.3", config_path="pkg://metaopt_cli.conf", config_name="train")
@reports_job_errors
def main(cfg: DictConfig) -> float | JobFailed | None:
    """The run's objective (trainer.objective), for a sweeper; None on ranks other than 0."""
    # With resume=, the command line composed the run's own config and made its folder Hydra's
    # run dir (cli.py), so a resumed run is configured and placed like a new one.
    hydra_cfg = HydraConfig.get()
    run_dir, choices = Path(hydra_cfg.runtime.output_dir), dict(hydra_cfg.runtime.choices)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        # Runs of one sweep share a W&B group, named after the sweep's folder.
        group = f"sweep:{hydra_cfg.sweep.dir}"
    else:
        group = f"{choices['task']}-{choices['estimator']}"
    world = distributed.current()
    joining = world.size == 1 and (tasks := distributed.submitit_world()).size > 1
    if joining:  # a submitit job's tasks, started past cli.py, where torchrun's ranks join
        join_tasks(tasks, run_dir)
        world = tasks
    # The run directory is named where a file's own name is not known (the checkpoint's bytes
    # go through torch.save). Rank 0 owns it, and holds its lock for all ranks.
    try:
        with writing(run_dir), run_lock(run_dir) if world.main else nullcontext(), \
                showing_progress(cfg.trainer.progress and world.main), titled_pictures(run_title(choices)):
            if cfg.resume and world.main:
                record_overrides(run_dir, list(hydra_cfg.overrides.task))
            summary = train(cfg, choices, run_dir, hydra_cfg.job.override_dirname or "defaults", group)
    except LostRank as error:
        _lost(error, world, run_dir)
    finally:
        if joining:
            distributed.leave()
    if summary is None:
        return None
    value = objective_value(summary, summary["objective"])
    if math.isnan(value) and hydra_cfg.mode == RunMode.MULTIRUN:
        # Optuna's sweeper fails on a NaN, and a sweep must go on: a failed trial, reported at the end.
        return JobFailed(f"its objective {summary['objective']} is {summary.get(summary['objective'])}, which a "
                         "sweeper cannot rank (its summary.json holds the run's other figures)")
    return value


def _lost(error: LostRank, world: distributed.World, run_dir: Path) -> NoReturn:
    kept = (f"continue from its last checkpoint with `{resume_command(run_dir)}`" if has_checkpoint(run_dir)
            else "no checkpoint was written yet: start it again")
    print(f"error: rank {world.rank} of {world.size} lost the job's other ranks ({error}): one of them died "
          f"or was killed (see the launcher's report and {run_dir / 'logs'}); {kept}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    # Not sys.exit: tearing down a process group whose peer is gone can block, and a dead rank
    # must never leave the others hanging.
    os._exit(1)
