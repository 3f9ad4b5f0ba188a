"""Compose every configuration a command line asks for and check it before anything runs."""
import dataclasses
import difflib
import re

from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from .bench import check_bench_config
from .compat import check_run_config
from .errors import UserError, fail
from .gradcheck import check_gradcheck_config

# What a command checks beyond composing. gradcheck and bench list the estimators they run,
# whatever `estimator` says, and report one a task cannot use instead of refusing it.
CHECKS = {
    "train": lambda cfg: check_run_config(cfg, cfg.hydra.runtime.choices),
    "gradcheck": lambda cfg: check_gradcheck_config(cfg, cfg.hydra.runtime.choices),
    "bench": lambda cfg: check_bench_config(cfg, cfg.hydra.runtime.choices),
}


def check_command_line(command: str, overrides: list[str], multirun: bool) -> None:
    try:
        with initialize_config_module("metaopt_cli.conf", version_base="1.3"):
            for point in _sweep_points(overrides, multirun):
                cfg = compose(config_name=command, overrides=point, return_hydra_config=True)
                if command in CHECKS:
                    CHECKS[command](cfg)
    except UserError as error:
        fail(str(error))
    except (HydraException, OmegaConfBaseException) as error:
        fail(describe_config_error(error).replace("{command}", command))


def _sweep_points(overrides: list[str], multirun: bool) -> list[list[str]]:
    if not multirun:
        return [overrides]
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


def describe_config_error(error: Exception) -> str:
    """One line, with the fix, for an error Hydra or OmegaConf raised while composing."""
    if isinstance(error, MissingConfigException) and error.options:
        group, _, option = (error.missing_cfg_file or "").rpartition("/")
        return f"unknown {group or 'config'} '{option}': choose one of {', '.join(sorted(error.options))}"
    # Hydra wraps OmegaConf's error, which names the key, as its cause or (composing an
    # experiment) its context.
    context = error.__context__ if isinstance(error.__context__, OmegaConfBaseException) else None
    cause = error.__cause__ or context or error
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if message.startswith("Ambiguous value"):
        return f"{message}: add -m to run one job per value (a sweep)"
    key = getattr(cause, "full_key", None)
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and key:
        source = re.match(r"In '(experiment/[^']+)'", str(error))
        if source:  # an experiment's knob for its own choice of a group, which the command line changed
            return (f"unknown key '{key}': {source.group(1)} sets it for the {key.split('.')[0]} it chooses; "
                    f"keep that {key.split('.')[0]}, or run without the experiment")
        return f"unknown key '{key}'{_suggestion(cause)} (metaopt {{command}} --cfg job shows every key)"
    where = f"{key}: " if key and key not in message else ""
    return f"{where}{message}"


def _suggestion(error: OmegaConfBaseException) -> str:
    """`; did you mean 'truncation'?` from the schema the unknown key was set on."""
    schema = getattr(error, "object_type", None)
    if not dataclasses.is_dataclass(schema):
        return ""
    names = [field.name for field in dataclasses.fields(schema)]
    close = difflib.get_close_matches(str(error.key), names, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
