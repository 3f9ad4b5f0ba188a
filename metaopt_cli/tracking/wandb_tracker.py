"""logger=wandb: a W&B run per metaopt run, grouped by sweep."""
import netrc
import os
from pathlib import Path

from ..errors import UserError

MODES = ("auto", "online", "offline", "disabled")


class WandbTracker:
    def __init__(self, mode: str, project: str, group: str | None):
        if mode not in MODES:
            raise UserError(f"logger.mode must be one of {', '.join(MODES)}, got '{mode}'")
        self.mode, self.project, self.group = mode, project, group
        self.run = None

    def start(self, config: dict, run_dir: Path, name: str, default_group: str, run_id: str | None) -> None:
        import wandb  # imported here: it takes a second, and logger=none runs never need it

        mode = self.mode
        if mode == "auto":
            mode = "online" if _has_credentials() else "offline"
        self.run = wandb.init(
            project=self.project,
            group=self.group or default_group,
            name=name,
            config=config,
            mode=mode,
            # Never the current directory: the run's own folder, unless the user chose one.
            dir=os.environ.get("WANDB_DIR", str(run_dir)),
            id=run_id,
            resume="allow" if run_id else None,
        )

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
            print(f"W&B run saved offline; upload it with: wandb sync {run_path}")


def _has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc, as `wandb login` leaves it."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
