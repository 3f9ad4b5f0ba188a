"""The config of an earlier run, for `train resume=<dir>` and `eval run=<dir>`."""
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config.store import GROUPS
from .errors import UserError

RUN_KEYS = ("run", "resume")  # the overrides that name an earlier run


def with_run_choices(overrides: list[str]) -> list[str]:
    """`eval run=<dir> task.test_episodes=…`: the run's own group choices go first, so that the
    other overrides are composed against the run's task and estimator, not the defaults."""
    named = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] in RUN_KEYS and "=" in o]
    hydra_file = Path(named[0]).expanduser() / ".hydra" / "hydra.yaml" if named else None
    if hydra_file is None or not hydra_file.exists():
        return overrides  # nothing to add; a bad run directory is reported when the command runs
    choices = OmegaConf.load(hydra_file).hydra.runtime.choices
    given = {o.split("=", 1)[0] for o in overrides}
    return [f"{group}={choices[group]}" for group in GROUPS
            if choices.get(group) is not None and group not in given] + overrides


def run_dir_of(path: str) -> Path:
    run_dir = Path(path).expanduser().resolve()
    if not (run_dir / ".hydra" / "config.yaml").exists():
        raise UserError(f"{run_dir} is not a metaopt run directory (no .hydra/config.yaml): pass the folder of a run")
    return run_dir


def load_run_config(run_dir: Path, skip: str) -> tuple[DictConfig, dict]:
    """The run's composed config and group choices, with this command line's key=value
    overrides on top (all but `skip`, the one naming the run). Changing a group would make
    it another run, so that is refused."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    choices = dict(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices)
    OmegaConf.set_struct(cfg, True)
    for override in OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task)):
        key = override.key_or_group
        if key == skip:
            continue
        if key in GROUPS:  # the run's own choices come back from with_run_choices; others are refused
            if override.value() != choices.get(key):
                raise UserError(
                    f"{key}={override.value()} cannot apply to an existing run, which used {key}={choices.get(key)}: "
                    f"leave {key}= out, or start a new run"
                )
            continue
        try:
            OmegaConf.update(cfg, key, override.value(), merge=True)
        except OmegaConfBaseException as error:
            raise UserError(f"cannot set {key} on this run: {str(error).splitlines()[0]}") from None
    return cfg, choices
