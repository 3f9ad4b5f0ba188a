"""A dashboard run for the commands other than train (bench, gradcheck): their tables, charts and
pictures beside the training runs they inform, under logger=wandb as under train."""
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ..build import build


@contextmanager
def command_run(cfg: DictConfig, job_type: str):
    """The tracker of `cfg.logger`, started as a run of `job_type` in Hydra's output folder, and
    finished however the command ends."""
    hydra_cfg = HydraConfig.get()
    tracker = build(cfg.logger)
    failed = True
    try:
        tracker.start(OmegaConf.to_container(cfg, resolve=True), Path(hydra_cfg.runtime.output_dir),
                      hydra_cfg.job.override_dirname or "defaults",
                      f"{hydra_cfg.runtime.choices['task']}-{job_type}", run_id=None, job_type=job_type)
        yield tracker
        failed = False
    finally:
        tracker.finish(failed)
