"""logger=wandb: a W&B run per metaopt run, grouped by sweep."""
import logging
import netrc
import os
import shlex
from pathlib import Path

from ..errors import UserError

MODES = ("auto", "online", "offline", "disabled")

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

    def start(self, config: dict, run_dir: Path, name: str, default_group: str, run_id: str | None) -> None:
        import wandb  # imported here: it takes a second, and logger=none runs never need it

        mode = self.mode
        if mode == "auto":
            mode = "online" if _has_credentials() else "offline"
        init = dict(
            project=self.project,
            group=self.group or default_group,
            name=name,
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

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run else None

    def log(self, step: int, metrics: dict) -> None:
        self.run.log(metrics, step=step)

    def log_pictures(self, step: int, paths: list[Path]) -> None:
        import wandb

        self.run.log({path.stem: wandb.Image(str(path)) for path in paths}, step=step)

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
