"""`metaopt compare <sweep or run dirs…> [--metrics a,b] [--spread ci95|std] [--out DIR]`: a sweep's
runs as one table.

Not a Hydra app, unlike the other commands: it composes no config and starts no run; it reads
folders, which are its positional arguments (Hydra's command line has no place for them).
"""
import argparse
import os
from pathlib import Path

from ..comparison.groups import group_runs
from ..comparison.interval import SPREADS
from ..comparison.metrics import chosen_metrics
from ..comparison.picture import save_meta_loss_picture
from ..comparison.runs import find_runs
from ..comparison.table import caption, csv_table, markdown_table, text_table
from ..errors import UserError, fail, reports_user_errors
from ..run_config import resume_command


def main(args: list[str]) -> None:
    if args[:1] in (["-sc"], ["--shell-completion"]):
        return  # no completions of ours: the shell's `-o default` completes folder names
    options = _parser().parse_args(args)
    _compare(options.folders, options.metrics, options.out, options.spread)


@reports_user_errors
def _compare(folders: list[str], metrics: list[str] | None, out: str | None, spread: str) -> None:
    runs = find_runs(folders)
    groups = group_runs(runs)
    metrics = chosen_metrics(runs, metrics)
    print("\n".join([*caption(groups, spread), "", text_table(groups, metrics, spread)]))
    stopped = [run for run in runs if run.state == "stopped"]
    if stopped:
        print("\nstopped without a summary (no process holds them); continue each with:")
        print("\n".join(f"  {resume_command(run.path)}" for run in stopped))
    out_dir = Path(out).expanduser() if out else _beside(folders)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot write into {out_dir} ({error.strerror}): pass --out <a writable folder>") from None
    _replace(out_dir / "compare.csv", lambda path: path.write_text(csv_table(groups, metrics, spread)))
    _replace(out_dir / "compare.md", lambda path: path.write_text(markdown_table(groups, metrics, spread)))
    _replace(out_dir / "compare.png", lambda path: save_meta_loss_picture(groups, path, spread))
    print(f"\nwrote compare.csv, compare.md, compare.png in {_shown(out_dir)}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metaopt compare",
        description="The runs under the folders given (a sweep's, or single runs), grouped over trainer.seed: "
                    "each metric of their summary.json as mean ± 95% CI (or sample std) over seeds, and each "
                    "group's meta-loss curve. Writes compare.csv, compare.md and compare.png. Works on a sweep still running.")
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help="a sweep's folder, or run folders")
    parser.add_argument("--metrics", type=_names, metavar="A,B",
                        help="summary keys to show (default: the objective, then every accuracy, loss or MSE)")
    parser.add_argument("--spread", choices=tuple(SPREADS), default="ci95",
                        help="what ± stands for: ci95, the 95%% confidence interval of the mean over seeds "
                             "(Student t; default), or std, the seeds' sample standard deviation, as dataset "
                             "distillation papers report")
    parser.add_argument("--out", metavar="DIR",
                        help="where the files go (default: the folder given, or the common parent of those given)")
    parser.error = lambda message: fail(f"{message}: see `metaopt compare --help`")
    return parser


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"'{text}' has an empty name: write --metrics a,b")
    return names


def _beside(folders: list[str]) -> Path:
    """Beside the runs, never the current directory unless they are there."""
    return Path(os.path.commonpath([Path(folder).expanduser().resolve() for folder in folders]))


def _shown(folder: Path) -> str:
    """Relative to the current directory where it lies below it, as a sweep's outputs/ usually does."""
    folder = folder.resolve()
    return str(folder.relative_to(Path.cwd())) if folder.is_relative_to(Path.cwd()) and folder != Path.cwd() \
        else str(folder)


def _replace(path: Path, write) -> None:
    """Written beside and renamed over, so that a reader never finds half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)  # half a file (a full disk) is no use to anyone
        raise UserError(f"cannot write {path} ({error.strerror}): pass --out <a writable folder>") from None
