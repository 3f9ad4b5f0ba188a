"""`metaopt <command> [overrides]`: one entry point, one Hydra app per command.

Each command is a `@hydra.main` app, so `-m` sweeps, `--cfg job`, `--help` and shell
completion behave as in any Hydra app. Before handing over, every configuration the command
line asks for is composed and checked, so a typo or an unsupported choice fails at start-up
with one `error:` line instead of a Hydra traceback halfway through a sweep.
"""
import importlib
import os
import sys

COMMANDS = {
    "train": "meta-train a task's meta-parameters with a gradient estimator",
    "eval": "re-run a task's evaluation from a run's checkpoint (run=<run dir>)",
    "gradcheck": "compare estimators' meta-gradients with the exact one (gradcheck.estimators=[…])",
    "bench": "seconds and peak memory per estimate, per estimator, as the horizon grows",
    "experts": "train and store the expert trajectories of task.method=trajectory_match (experts.count=…)",
    "list": "config groups, their options and the task × estimator matrix",
    "compare": "a sweep's runs as one table, mean ± 95% CI or std over seeds (compare <sweep or run dirs…>; --help)",
}

USAGE = "usage: metaopt {" + ",".join(COMMANDS) + "} [hydra overrides] [-m] [--cfg job] [--help]"


def main() -> None:
    # Ctrl-C outside the meta-steps (which stop at a step's end, with a checkpoint): during
    # start-up, whose imports take seconds (hence imported below, not at the top), or during
    # the final evaluation. One line, and the shell's status for SIGINT.
    try:
        _main(sys.argv[1:])
    except KeyboardInterrupt:
        print("interrupted (SIGINT): stopped outside a meta-step; a run directory keeps its last checkpoint, "
              "which `metaopt train resume=<run dir>` continues", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `metaopt list | head`: the reader left; Python's own exit flush would fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _main(args: list[str]) -> None:
    # Answered before any import of torch (pulled in by distributed, startup, …: seconds).
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        width = max(map(len, COMMANDS))
        for name, what in COMMANDS.items():
            print(f"  {name:{width}s} {what}")
        return
    if args[0] in ("-sc", "--shell-completion") and "COMP_LINE" in os.environ:
        args = _completion_args(args)
    command, args = args[0], args[1:]
    if command not in COMMANDS:
        from .errors import fail
        fail(f"unknown command '{command}': choose one of {', '.join(COMMANDS)}")
    if command == "compare":  # reads folders, composes no config: not a Hydra app (commands/compare.py)
        importlib.import_module("metaopt_cli.commands.compare").main(args)
        return

    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from . import distributed, sweep
    from .config.store import register_configs
    from .errors import UserError, fail
    from .launch import agree_run_dir, start_rank
    from .run_config import run_overrides
    from .startup import check_command_line

    register_configs()
    parser = get_args_parser()
    parser.error = fail  # a bad flag is a user error like any other: one line, status 2
    # Intermixed, so that `-m` may follow overrides as well as precede them.
    parsed = parser.parse_intermixed_args(args)
    if parsed.multirun and (parsed.cfg or parsed.info):
        fail("-m runs a sweep's jobs and --cfg/--info show one config: drop -m to see the config, "
             "or --cfg/--info to run the sweep")
    flags = [arg for arg in args if arg not in parsed.overrides]
    informational = parsed.help or parsed.hydra_help or parsed.shell_completion or parsed.info or parsed.cfg
    world = distributed.launched_world()
    if world.size > 1 and not informational:
        start_rank(command, parsed.multirun, world)
    try:
        parsed.overrides = run_overrides(command, parsed.overrides, parsed.multirun, required=not informational)
    except UserError as error:
        fail(str(error))
    if not informational:
        run_dir = check_command_line(command, parsed.overrides, parsed.multirun)
        if world.size > 1:
            parsed.overrides = agree_run_dir(parsed.overrides, run_dir, world)
        sweep.swept_keys.update(o.key_or_group for o in OverridesParser.create().parse_overrides(parsed.overrides)
                                if o.is_sweep_override())
    # Hydra parses sys.argv itself; argv[0] stays the executable so completion installs for it.
    sys.argv = [sys.argv[0], *flags, *parsed.overrides]
    try:
        importlib.import_module(f"metaopt_cli.commands.{command}").main()
    except SystemExit as exit_:
        if exit_.code == 1:  # Hydra's sweeper gave up (Optuna's, when every trial failed): say why each failed
            sweep.exit_if_jobs_failed()
        raise
    finally:
        distributed.leave()
    sweep.exit_if_jobs_failed()


def _completion_args(args: list[str]) -> list[str]:
    """Shell completion calls `metaopt -sc query=bash` with the whole line in COMP_LINE.

    Complete the command word ourselves; past it, drop it from COMP_LINE so that Hydra sees
    the line of an ordinary app.
    """
    words = os.environ["COMP_LINE"].split()
    typing_command = len(words) < 2 or (len(words) == 2 and not os.environ["COMP_LINE"].endswith(" "))
    if typing_command:
        print(" ".join(COMMANDS))
        sys.exit(0)
    command = words[1]
    os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]]) + (
        " " if os.environ["COMP_LINE"].endswith(" ") else ""
    )
    return [command, *args]
