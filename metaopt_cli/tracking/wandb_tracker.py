"""logger=wandb: a W&B run per metaopt run, grouped by sweep."""
import logging
import netrc
import os
import shlex
from pathlib import Path

from ..checkpoint import FILENAME as CHECKPOINT
from ..errors import UserError
from .curves import Curves, beside
from .namespaces import PLOTTED, STEP, Results, curves_key, final_metrics, picture_key, run_facts, step_metrics

MODES = ("auto", "online", "offline", "disabled")
# What `metaopt eval run=<folder>` needs of a run (the checkpoint, and the .hydra/ files its config
# is composed again from), and its summary where it has one: the files of its model artifact.
ARTIFACT_FILES = (CHECKPOINT, ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "summary.json")
MODEL_METADATA = ("task", "estimator", "backbone", "data")

log = logging.getLogger(__name__)


class WandbTracker:
    def __init__(self, mode: str, project: str, group: str | None, init_timeout: float):
        if mode not in MODES:
            raise UserError(f"logger.mode must be one of {', '.join(MODES)}, got '{mode}'")
        if init_timeout <= 0:
            raise UserError(f"logger.init_timeout must be positive (seconds), got {init_timeout}")
        # Asked for online by name, a run without credentials would only find out after its
        # first wait on the server; logger.mode=auto is the mode that falls back to offline.
        if mode == "online" and not _has_credentials():
            raise UserError("logger.mode=online needs W&B credentials: run `wandb login` or set WANDB_API_KEY, "
                            "or use logger.mode=auto to log offline without them")
        self.mode, self.project, self.group, self.init_timeout = mode, project, group, init_timeout
        self.run = None

    def start(self, config: dict, run_dir: Path, name: str, default_group: str, run_id: str | None,
              job_type: str = "train") -> None:
        import wandb  # imported here: it takes a second, and logger=none runs never need it

        mode = self.mode
        if mode == "auto":
            mode = "online" if _has_credentials() else "offline"
        init = dict(
            project=self.project,
            group=self.group or default_group,
            name=name,
            job_type=job_type,
            config=config,
            # Never the current directory: the run's own folder, unless the user chose one.
            dir=os.environ.get("WANDB_DIR", str(run_dir)),
            id=run_id,
            resume="allow" if run_id else None,
            settings=wandb.Settings(init_timeout=self.init_timeout),
        )
        try:
            self.run = wandb.init(mode=mode, **init)
        except wandb.errors.Error as error:
            if mode != "online":
                raise
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if self.mode == "online":
                raise UserError(f"W&B could not start the run online ({reason}): check the network and "
                                "credentials, raise logger.init_timeout, or use logger.mode=offline") from None
            # logger.mode=auto: the run matters more than the dashboard; its log can be synced later.
            log.warning(f"W&B unreachable ({reason}); logging this run offline instead")
            self.run = wandb.init(mode="offline", **init)
        self.run.define_metric(STEP, hidden=True)
        for space in PLOTTED:
            self.run.define_metric(f"{space}/*", step_metric=STEP)

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run else None

    def log(self, step: int, record: dict, learned=(), validated=()) -> None:
        """A metrics.jsonl record, its keys namespaced (namespaces.py): `learned` and `validated`
        name the keys that are θ's values and the validation's."""
        self.run.log(step_metrics(step, record, learned, validated), step=step)

    def log_pictures(self, step: int | None, paths: list[Path]) -> None:
        """The pictures, and the curves a task kept beside them as JSON, as tables and charts."""
        import wandb

        self.run.log({picture_key(path): wandb.Image(str(path)) for path in paths}, step=step)
        for path in paths:
            if (curves := beside(path)) is not None:
                self.log_curves(step, curves)

    def log_curves(self, step: int | None, curves: Curves) -> None:
        """A wandb.Table of the rows, and a chart of each y column from it."""
        import wandb

        table = wandb.Table(columns=curves.columns, data=[list(row.values()) for row in curves.rows])
        charts = {curves_key(curves.name, "table"): table}
        for y in curves.ys:
            title = f"{curves.name}: {y} by {curves.x}"
            charts[curves_key(curves.name, y)] = (
                wandb.plot.bar(table, curves.x, y, title=title) if curves.bars
                else wandb.plot.line(table, curves.x, y, stroke=curves.series, title=title))
        self.run.log(charts, step=step)

    def log_results(self, step: int, facts: dict, results: Results) -> None:
        """The end of the run: its last eval/ and learned/ points and its test/ figures, kept in the
        summary too, beside what the run was (run/…)."""
        final = final_metrics(results)
        self.run.log({STEP: step, **final}, step=step)
        self.run.summary.update({**run_facts(facts), **final})

    def log_checkpoint(self, run_dir: Path, step: int, choices: dict) -> None:
        """The checkpoint and what `metaopt eval run=` needs beside it, as the run's model artifact
        (a new version each time): at the end of the run, and when a signal stops it."""
        import wandb

        artifact = wandb.Artifact(f"model-{self.run.id}", type="model",
                                  metadata={**{group: choices[group] for group in MODEL_METADATA}, "step": step})
        try:
            for name in ARTIFACT_FILES:
                if (run_dir / name).is_file():
                    artifact.add_file(str(run_dir / name), name=name)
            self.run.log_artifact(artifact, aliases=["latest", f"step-{step}"])
        except (wandb.errors.Error, OSError) as error:
            # The checkpoint is safe on disk; a stopping run must still hand its signal on (a
            # scheduler's SIGTERM may have reached W&B's service process too).
            log.warning(f"W&B could not log the checkpoint of meta-step {step} as an artifact ({error}); "
                        f"it is in {run_dir}")

    def summary(self, values: dict) -> None:
        self.run.summary.update(values)

    def finish(self, failed: bool) -> None:
        if self.run is None:
            return
        offline = self.run.settings.mode == "offline"
        run_path = Path(self.run.dir).parent
        self.run.finish(exit_code=1 if failed else 0)
        if offline:
            log.info(f"W&B run saved offline; upload it with: wandb sync {shlex.quote(str(run_path))}")


def _has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc, as `wandb login` leaves it."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
