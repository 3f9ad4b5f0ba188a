"""`metaopt eval run=<run dir> [overrides]`: the task's evaluation, from a run's checkpoint.

eval.json and the task's pictures go into the run's own `eval/` folder (cli.py makes it Hydra's
run dir, without a `.hydra/` of its own, so the run's is never touched), and the pictures to
the run's W&B run where it logged to one."""
import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ..build import build, build_task, eval_generator, pick_device
from ..checkpoint import load_checkpoint
from ..errors import UserError
from ..pictures import run_title, titled_pictures
from ..progress import showing_progress
from ..run_config import run_dir_of
from ..summary import REPORTED_GROUPS, format_summary, strict_json
from ..sweep import reports_job_errors
from ..write_faults import replace_file, writing

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="pkg://metaopt_cli.conf", config_name="eval")
@reports_job_errors
def main(run_cfg: DictConfig) -> None:
    # The command line composed the run's own config (cli.py); Hydra's run dir is its eval/ folder.
    run_dir = run_dir_of(run_cfg.run)
    choices = dict(HydraConfig.get().runtime.choices)
    device = pick_device(run_cfg.trainer.device)
    task = build_task(run_cfg, device)
    checkpoint = load_checkpoint(run_dir)
    expected = set(task.init_meta_params(eval_generator(0, device)))
    if checkpoint.get("task") != choices["task"] or set(checkpoint["meta_params"]) != expected:
        raise UserError(
            f"the checkpoint in {run_dir} holds {checkpoint.get('task')} meta-parameters, not those of "
            f"task={choices['task']}: pass the run directory the checkpoint was written in"
        )
    meta_params = {name: value.to(device) for name, value in checkpoint["meta_params"].items()}
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    tracker, failed = build(run_cfg.logger), True
    try:
        # The training run's own W&B run, continued: its pictures and its evaluation side by side.
        tracker.start(OmegaConf.to_container(run_cfg, resolve=True), out_dir, f"eval:{run_dir.name}",
                      f"{choices['task']}-{choices['estimator']}", checkpoint.get("wandb_id"), job_type="eval")
        with showing_progress(run_cfg.trainer.progress):
            results = task.evaluate(meta_params, eval_generator(run_cfg.trainer.seed, device))
        report = {**{group: choices[group] for group in REPORTED_GROUPS},
                  "run": str(run_dir), "steps": checkpoint["step"], **results}
        replace_file(out_dir / "eval.json", lambda file: file.write(strict_json(report)))
        with titled_pictures(run_title(choices)), writing(out_dir):
            pictures = task.save_pictures(meta_params, run_dir, out_dir)
        tracker.log_pictures(None, pictures)  # after the run's last step
        failed = False
    finally:
        tracker.finish(failed)
    log.info(format_summary(report, out_dir))
