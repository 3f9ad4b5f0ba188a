"""Compose every configuration a command line asks for and check it before anything runs."""
import dataclasses
import difflib
import os
import re
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
)

from .bench import check_bench_config
from .build import build
from .compat import check_run_config
from .config.store import GROUPS
from .config.tasks import DistillMethod
from .errors import UserError, fail
from .gradcheck import check_gradcheck_config
from .objective import check_sweeper_direction, objective_of
from .sweep import prepare_launcher
from .tasks.distill.experts import (
    check_experts_config,
    check_experts_present,
    choices_of,
    default_folder,
    experts_folder,
    make_command,
)

# The submitit plugin's configs, which metaopt's launcher presets extend.
SUBMITIT_CONFIGS = "hydra/launcher/submitit_"
OPTUNA_CONFIG = "hydra/sweeper/optuna"  # the Optuna plugin's, which conf/hparams_search/ presets choose
# Hydra's own sweeper, which runs every point of the command line's sweeps; any other (Optuna's,
# Nevergrad's) chooses its points as it goes.
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def check_train_config(cfg: DictConfig) -> None:
    check_run_config(cfg, cfg.hydra.runtime.choices)
    if cfg.task.get("method") == DistillMethod.trajectory_match:  # missing experts: one line before any run folder
        choices = choices_of(cfg.hydra)
        folder = Path(cfg.task.experts) if cfg.task.experts else default_folder(choices)
        check_experts_present(folder, make_command(choices, folder))
    check_sweeper_direction(objective_of(cfg, cfg.hydra.runtime.choices), cfg.hydra.sweeper)
    build(cfg.logger)  # its constructor checks mode and credentials, before any run folder exists


def check_gradcheck(cfg: DictConfig) -> None:
    check_gradcheck_config(cfg, cfg.hydra.runtime.choices)
    build(cfg.logger)  # as train's: its results go to W&B too


def check_bench(cfg: DictConfig) -> None:
    check_bench_config(cfg, cfg.hydra.runtime.choices)
    build(cfg.logger)


def check_experts(cfg: DictConfig) -> None:
    check_experts_config(cfg, cfg.hydra.runtime.choices)
    check_output_dir(str(experts_folder(cfg.experts, choices_of(cfg.hydra))), "experts.dir")


# What a command checks beyond composing. gradcheck and bench list the estimators they run,
# whatever `estimator` says, and report one a task cannot use instead of refusing it.
CHECKS = {
    "train": check_train_config,
    "gradcheck": check_gradcheck,
    "bench": check_bench,
    "experts": check_experts,
}


def check_command_line(command: str, overrides: list[str], multirun: bool) -> str | None:
    """Returns the run directory (resolved: its `${now:…}` read once) of a single run."""
    run_dir = None
    try:
        with initialize_config_module("metaopt_cli.conf", version_base="1.3"):
            for point in _sweep_points(command, overrides, multirun):
                cfg = compose(config_name=command, overrides=point, return_hydra_config=True)
                _refuse_added_keys(command, point)
                prepare_launcher(cfg.hydra.launcher._target_)
                if command in CHECKS:
                    CHECKS[command](cfg)
                if command != "list":  # list writes nothing
                    check_output_dir(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir,
                                     "hydra.sweep.dir" if multirun else "hydra.run.dir")
                run_dir = None if multirun else cfg.hydra.run.dir
    except UserError as error:
        fail(str(error))
    except (HydraException, OmegaConfBaseException) as error:
        fail(describe_config_error(error).replace("{command}", command))
    return run_dir


def _refuse_added_keys(command: str, point: list[str]) -> None:
    """`+trainer.foo=1` would add a key that nothing reads, silently: refused like a typo. (`+`
    on a key that exists is Hydra's own error.)"""
    parsed = OverridesParser.create().parse_overrides(point)
    added = [o for o in parsed if (o.is_add() or o.is_force_add()) and o.key_or_group not in GROUPS
             and not o.key_or_group.startswith(("hydra.", "hydra/")) and "/" not in o.key_or_group]
    if not added:
        return
    base = compose(config_name=command, overrides=[o.input_line for o in parsed if o not in added])
    for override in added:
        key = override.key_or_group
        parent_key, _, name = key.rpartition(".")
        parent = OmegaConf.select(base, parent_key) if parent_key else base
        if isinstance(parent, DictConfig) and name in parent:
            continue  # ++ on a key the schema has: an ordinary override
        close = difflib.get_close_matches(name, list(parent), n=1) if isinstance(parent, DictConfig) else []
        hint = f"; did you mean '{parent_key + '.' if parent_key else ''}{close[0]}'?" if close else ""
        raise UserError(f"unknown key '{key}'{hint}: metaopt reads no such setting, so + would add one that "
                        f"nothing uses (metaopt {command} --cfg job shows every key)")


def check_output_dir(path: str, knob: str) -> None:
    """The folder Hydra is about to create must be creatable: Hydra's own failure is a traceback."""
    folder = Path(path).expanduser().absolute()
    existing = next(parent for parent in (folder, *folder.parents) if _exists(parent))
    longest = max(os.pathconf(existing, "PC_NAME_MAX"), 1)
    for part in folder.parts:
        if len(os.fsencode(part)) > longest:
            raise UserError(f"{knob}: the folder name '{part[:32]}…' is {len(os.fsencode(part))} bytes, longer than "
                            f"this file system allows ({longest}): pass a shorter {knob}")
    if not existing.is_dir():
        raise UserError(f"{knob}: {existing} is a file, not a folder: pass {knob}=<a folder>")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{knob}: cannot create {folder}, since {existing} is not writable: "
                        f"pass {knob}=<a writable folder>")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long, say: checked next, with the file system's limit
        return False


def _sweep_points(command: str, overrides: list[str], multirun: bool) -> list[list[str]]:
    """Every point of a basic sweep; the first point of another sweeper's search space, since the
    points it will try are not known before it runs (an interval has infinitely many)."""
    if not multirun:
        return [overrides]
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    sweeper = compose(config_name=command, overrides=_first_point(parsed), return_hydra_config=True).hydra.sweeper
    if sweeper._target_ == BASIC_SWEEPER:
        searching = next((o for o in parsed if o.is_interval_sweep()), None)
        if searching is not None:
            raise UserError(f"{searching.input_line}: Hydra's basic sweeper runs a list of points, and an interval "
                            "has no list; search it with hydra/sweeper=optuna (pip install 'metaopt[optuna]'), or "
                            "list the values (a,b,c)")
        return [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]
    # A preset's search space (hydra.sweeper.params), then the command line's, which wins per key
    # as in the Optuna sweeper.
    searched = parser.parse_overrides([f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()])
    last = {override.get_key_element(): override for override in [*searched, *parsed]}
    return [_first_point(list(last.values()))]


def _first_point(parsed: list[Override]) -> list[str]:
    """Each sweep at its first value: a choice's first, a range's start, an interval's lower bound."""
    point = []
    for override in parsed:
        if not override.is_sweep_override():
            point.append(override.input_line)
            continue
        first = str(override.value().start) if override.is_interval_sweep() else next(override.sweep_string_iterator())
        point.append(f"{override.get_key_element()}={first}")
    return point


def describe_config_error(error: Exception) -> str:
    """One line, with the fix, for an error Hydra or OmegaConf raised while composing."""
    if isinstance(error, MissingConfigException) and (error.missing_cfg_file or "").startswith(SUBMITIT_CONFIGS):
        return "hydra/launcher: the submitit launchers need Hydra's submitit plugin: pip install 'metaopt[slurm]'"
    if isinstance(error, MissingConfigException) and (error.missing_cfg_file or "") == OPTUNA_CONFIG:
        return "hydra/sweeper=optuna needs Hydra's Optuna sweeper plugin: pip install 'metaopt[optuna]'"
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
