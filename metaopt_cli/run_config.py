"""The config of an earlier run, for `train resume=<dir>`, `eval run=<dir>` and the Python API.

A run directory may come from anyone (a colleague, a W&B artifact, a paper's release), so
nothing stored in it may name code. Its `.hydra/config.yaml` is never read: the config is
composed again from metaopt's own config groups, with the group choices recorded in
`.hydra/hydra.yaml` and the key=value overrides recorded in `.hydra/overrides.yaml`, after
checking that those overrides set no `_target_` (or other instantiation key) and nothing of
Hydra's. The command line's own overrides then go on top.
"""
import re
import shlex
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from .config.store import GROUPS
from .errors import UserError
from .legacy import earlier_choices, upgraded
from .write_faults import replace_file

RUN_KEYS = {"train": "resume", "eval": "run"}  # the override that names an earlier run, per command
OPTION = re.compile(r"^\w+$")  # a config group's option: a file name in conf/<group>/, never a path


def run_overrides(command: str, overrides: list[str], multirun: bool, required: bool) -> list[str]:
    """The overrides that compose the run named by `resume=`/`run=`: its recorded choices and
    overrides, this command line's on top, and Hydra told to write into the run directory (an
    `eval/` folder of it for eval) without replacing the run's `.hydra/`. Other command lines
    come back unchanged, but for settings written in an earlier form (legacy.py)."""
    overrides = upgraded(overrides)
    key = RUN_KEYS.get(command)
    given = _parse(overrides) if key else []
    named = [o for o in given if o.key_or_group == key]
    if not named:
        if command == "eval" and required:
            raise UserError("metaopt eval needs run=<run dir>: the folder of a `metaopt train` run")
        return overrides
    value = named[-1].value()
    if value is None and command == "train":
        return overrides  # resume=null is the default: a new run
    if multirun:
        raise UserError(f"{key}= continues one run and cannot be swept: drop -m")
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{key}= names no run directory: pass {key}=<the folder of a `metaopt train` run>")
    run_dir = run_dir_of(value)
    choices = recorded_choices(run_dir)
    for override in given:
        group = override.key_or_group
        if group in GROUPS and override.value() != choices.get(group):
            raise UserError(f"{group}={override.value()} cannot apply to an existing run, which used "
                            f"{group}={choices.get(group)}: leave {group}= out, or start a new run")
    own_dir = [o for o in given if o.key_or_group == "hydra.run.dir"]
    if command == "train" and own_dir:
        raise UserError(f"resume= continues in {run_dir}: leave hydra.run.dir out")
    out_dir = run_dir / "eval" if command == "eval" else run_dir
    placed = [] if own_dir else [f"hydra.run.dir={hydra_string(str(out_dir))}"]
    return _last_wins([*_base_overrides(run_dir, choices), *overrides, *placed, "hydra.output_subdir=null"])


def compose_run_config(run_dir: str | Path):
    """The run's config, composed from metaopt's groups as `train` composed it (for the
    Python API, outside any command)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    from .config.store import register_configs
    from .startup import describe_config_error

    run_dir = run_dir_of(str(run_dir))
    overrides = _base_overrides(run_dir, recorded_choices(run_dir))
    register_configs()
    outer = get_gh_backup()  # a Hydra app of the caller's, restored afterwards
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("metaopt_cli.conf", version_base="1.3"):
            return compose(config_name="train", overrides=overrides)
    except HydraException as error:
        raise UserError(f"the config recorded in {run_dir / '.hydra'} does not compose: "
                        f"{describe_config_error(error).replace('{command}', 'train')}") from None
    finally:
        restore_gh_from_backup(outer)


def run_dir_of(path: str) -> Path:
    run_dir = Path(path).expanduser().resolve()
    if not (run_dir / ".hydra" / "overrides.yaml").is_file() or not (run_dir / ".hydra" / "hydra.yaml").is_file():
        raise UserError(f"{run_dir} is not a metaopt run directory (no .hydra/overrides.yaml and .hydra/hydra.yaml): "
                        "pass the folder of a `metaopt train` run")
    return run_dir


def recorded_choices(run_dir: Path) -> dict:
    """The run's option of each config group, from `.hydra/hydra.yaml`."""
    path = run_dir / ".hydra" / "hydra.yaml"
    choices = _read_yaml(path)
    for part in ("hydra", "runtime", "choices"):
        choices = choices.get(part) if isinstance(choices, dict) else None
    if not isinstance(choices, dict):
        raise UserError(f"{path} holds no hydra.runtime.choices: it is damaged; restore it, or start a new run")
    picked = {group: choices.get(group) for group in GROUPS}
    picked.update(earlier_choices(picked, {o.key_or_group: o.value() for o in recorded_overrides(run_dir)}))
    for group, option in picked.items():
        if option is not None and not (isinstance(option, str) and OPTION.match(option)):
            raise UserError(f"{path} records {group}={option!r}, which is not one of metaopt's options: "
                            "it is damaged; restore it, or start a new run")
    return picked


def recorded_overrides(run_dir: Path) -> list[Override]:
    """The run's key=value overrides from `.hydra/overrides.yaml`, refused if one would set
    something that names code or configures Hydra."""
    path = run_dir / ".hydra" / "overrides.yaml"
    lines = _read_yaml(path)
    if lines is None:
        return []
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise UserError(f"{path} is not a list of overrides: it is damaged; restore it, or start a new run")
    overrides = _parse(upgraded(lines), str(path))
    for override in overrides:
        key = override.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")) or ("/" in key and key not in GROUPS) \
                or override.is_sweep_override() or _names_code(override.value()) \
                or (any(_instantiation_key(part) for part in key.split(".")) and not _torch_class(override)):
            raise UserError(f"{path} records `{override.input_line}`, which a run may not set (it names code "
                            "or configures Hydra): remove that line, or start a new run")
    return overrides


def record_overrides(run_dir: Path, overrides: list[str]) -> None:
    """Keep what this resume ran with, so that a later resume or eval composes the same config:
    replaced whole, so a kill leaves the old list or the new one."""
    kept = [line for line in overrides if not line.startswith(f"{RUN_KEYS['train']}=")]
    path = run_dir / ".hydra" / "overrides.yaml"
    replace_file(path, lambda file: yaml.safe_dump(kept, file, default_flow_style=False))


def hydra_string(text: str) -> str:
    """`text` as one Hydra override value, whatever characters a path holds."""
    # Hydra reads a backslash as an escape only before a quote or the closing quote; OmegaConf
    # reads `\${` as a literal `${`.
    escaped = re.sub(r"(\\+)(?='|$)", lambda run: run.group(1) * 2, text)
    escaped = escaped.replace("'", "\\'").replace("${", "\\${")
    return f"'{escaped}'"


def resume_command(run_dir: Path) -> str:
    """The command that continues a run, ready to paste into a shell."""
    return f"metaopt train {shlex.quote('resume=' + hydra_string(str(run_dir)))}"


def _base_overrides(run_dir: Path, choices: dict) -> list[str]:
    picked = [f"{group}={option}" for group, option in choices.items() if option is not None]
    skipped = {*GROUPS, *RUN_KEYS.values()}  # choices come from hydra.yaml; the run is named by the command line
    return picked + [o.input_line for o in recorded_overrides(run_dir) if o.key_or_group not in skipped]


def _last_wins(overrides: list[str]) -> list[str]:
    """One override per key, the last one given (the command line's over the recorded ones)."""
    last = {o.key_or_group: line for line, o in zip(overrides, _parse(overrides))}
    return list(last.values())


def _parse(lines: list[str], source: str | None = None) -> list[Override]:
    """`source`: the file the overrides were read from; None: the command line."""
    try:
        return OverridesParser.create().parse_overrides(lines)
    except HydraException as error:
        reason = str(error).strip().splitlines()[0]
        if source is None:
            raise UserError(f"cannot read the overrides ({reason}): quote a value that holds spaces, commas, "
                            "brackets or quotes for Hydra, as in key='a value'") from None
        raise UserError(f"cannot read the overrides in {source} ({reason}): it is damaged; restore it, "
                        "or start a new run") from None


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot read {path} ({reason}): the run directory is damaged; "
                        "restore it, or start a new run") from None


def _instantiation_key(name: str) -> bool:
    """`_target_`, `_partial_`, `_args_`…: the keys through which a config names code."""
    return len(name) > 2 and name.startswith("_") and name.endswith("_")


def _torch_class(override: Override) -> bool:
    """`trainer.outer_optimizer._target_=torch.optim.NAdam` (or a schedule's): a class of torch's
    own that a user chose, and no other code."""
    from .outer import names_torch_class  # imports torch: only for a run that recorded such a line

    return names_torch_class(override.key_or_group, override.value())


def _names_code(value) -> bool:
    if isinstance(value, dict):
        return any(_instantiation_key(str(k)) or _names_code(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_names_code(v) for v in value)
    return False
