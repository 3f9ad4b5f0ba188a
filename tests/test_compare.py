"""`metaopt compare` on a real 2 × 3 sweep (estimator × seed), finished and in progress, and its bad inputs."""
import csv
import fcntl
import json
import math
import shutil
import statistics

import pytest
import yaml

from metaopt_cli.comparison.interval import Estimate, shown
from metaopt_cli.run_config import resume_command

from conftest import TINY, assert_user_error, run_in_process

T_975_2_DOF = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (three seeds)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One sweep for the module: its six runs take seconds, not each test's."""
    cwd = tmp_path_factory.mktemp("compare")
    result = run_in_process(["train", "-m", "task=distill", "estimator=tbptt,pes", "trainer.seed=0,1,2", *TINY,
                             f"hydra.sweep.dir={cwd / 'sweep'}"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "sweep"


def _summaries_by_estimator(sweep) -> dict[str, list[dict]]:
    by_estimator = {}
    for job in sorted(sweep.glob("[0-9]")):
        estimator = next(line for line in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
                         if line.startswith("estimator="))
        by_estimator.setdefault(estimator, []).append(json.loads((job / "summary.json").read_text()))
    return by_estimator


def test_a_sweep_as_one_table_csv_markdown_and_picture(sweep, tmp_path):
    result = run_in_process(["compare", str(sweep)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("group"))
    # The objective (the summaries name it) first, then the other accuracies and losses.
    assert header.split() == ["group", "n", "distilled_val_acc", "distilled_test_acc", "random_real_test_acc"]
    rows = {line.split()[0]: line for line in lines if line.startswith("estimator=")}
    assert set(rows) == {"estimator=tbptt", "estimator=pes"}
    assert all(row.split()[1] == "3" and row.count("±") == 3 for row in rows.values()), rows
    assert "same in every run: task=distill" in result.stdout

    with (sweep / "compare.csv").open() as file:
        table = {row["group"]: row for row in csv.DictReader(file)}
    for estimator, summaries in _summaries_by_estimator(sweep).items():
        row = table[estimator]
        assert (row["n"], row["running"], row["stopped"]) == ("3", "0", "0")
        for metric in ("distilled_val_acc", "distilled_test_acc", "random_real_test_acc"):
            values = [summary[metric] for summary in summaries]
            assert float(row[f"{metric}_mean"]) == pytest.approx(statistics.fmean(values), rel=1e-12)
            half = T_975_2_DOF * statistics.stdev(values) / math.sqrt(3)
            assert float(row[f"{metric}_ci95"]) == pytest.approx(half, rel=1e-9)
            assert row[f"{metric}_n"] == "3"
    markdown = (sweep / "compare.md").read_text()
    assert "| group | n | distilled_val_acc | distilled_test_acc | random_real_test_acc |" in markdown
    assert markdown.count("| estimator=") == 2
    assert (sweep / "compare.png").read_bytes().startswith(b"\x89PNG")
    assert not list(sweep.glob("*.tmp"))


def test_spread_std_shows_the_seeds_sample_std(sweep, tmp_path):
    """--spread std: mean ± the sample standard deviation over seeds in the table, the CSV (a
    `_std` column in place of `_ci95`) and the Markdown, each saying so."""
    out = tmp_path / "out"
    result = run_in_process(["compare", str(sweep), "--spread", "std", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mean ± sample std over seeds" in result.stdout and "95% CI" not in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("estimator=")}
    with (out / "compare.csv").open() as file:
        table = {row["group"]: row for row in csv.DictReader(file)}
    for estimator, summaries in _summaries_by_estimator(sweep).items():
        values = [summary["distilled_test_acc"] for summary in summaries]
        row = table[estimator]
        assert "distilled_test_acc_ci95" not in row
        assert float(row["distilled_test_acc_std"]) == pytest.approx(statistics.stdev(values), rel=1e-12)
        assert float(row["distilled_test_acc_mean"]) == pytest.approx(statistics.fmean(values), rel=1e-12)
        # The shown ± is the std, not the CI's half-width (t·std/√3 = 2.48·std).
        _, _, _, _, _, mean, plus_minus, std, *_ = rows[estimator].split()  # distilled_test_acc: the second metric
        decimals = len(std.split(".")[1])
        assert (mean, plus_minus, std) == (f"{statistics.fmean(values):.{decimals}f}", "±",
                                           f"{statistics.stdev(values):.{decimals}f}")
    markdown = (out / "compare.md").read_text()
    assert "mean ± sample std over seeds" in markdown and markdown.count("±") >= 7
    assert (out / "compare.png").read_bytes().startswith(b"\x89PNG")


def test_chosen_metrics_and_runs_of_one_seed(sweep, tmp_path):
    """Two run folders (one seed per estimator): no interval, said so; --out where the files go."""
    result = run_in_process(["compare", str(sweep / "0"), str(sweep / "3"), "--metrics", "random_real_lr,steps",
                             "--out", str(tmp_path / "out")], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0.1 (1 seed)" in result.stdout and "±" not in result.stdout.split("\ngroup ")[1]
    with (tmp_path / "out" / "compare.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["group"] for row in rows] == ["estimator=tbptt", "estimator=pes"]
    assert [(row["steps_mean"], row["steps_ci95"], row["steps_n"]) for row in rows] == [("4.0", "", "1")] * 2


def test_the_objective_a_summary_names_comes_first(sweep, tmp_path):
    for job in ("0", "3"):
        shutil.copytree(sweep / job, tmp_path / "sweep" / job)
        path = tmp_path / "sweep" / job / "summary.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "objective": "random_real_lr"}))
    result = run_in_process(["compare", str(tmp_path / "sweep")], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    header = next(line for line in result.stdout.splitlines() if line.startswith("group"))
    assert header.split() == ["group", "n", "random_real_lr", "distilled_val_acc", "distilled_test_acc",
                              "random_real_test_acc"]


def test_a_sweep_in_progress(sweep, tmp_path):
    """A run that is still going (its lock held) and one that stopped: no summary, their curves as far as logged."""
    copy = tmp_path / "sweep"
    for job in ("0", "1", "2"):
        shutil.copytree(sweep / job, copy / job)
    for job in ("1", "2"):
        (copy / job / "summary.json").unlink()
    metrics = copy / "1" / "metrics.jsonl"
    metrics.write_text(metrics.read_text()[:-5])  # killed mid-line: the last record is dropped
    with (copy / "1" / "run.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what a live `metaopt train` holds
        result = run_in_process(["compare", str(copy)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith("all runs"))
    assert "1 running, 1 stopped" in row and "(1 seed)" in row
    assert resume_command(copy / "2") in result.stdout  # the stopped one: how to continue it
    with (copy / "compare.csv").open() as file:
        (row,) = csv.DictReader(file)
    assert (row["n"], row["running"], row["stopped"]) == ("1", "1", "1")


def test_meta_loss_curve_counts_a_run_as_far_as_it_got(sweep, tmp_path):
    from metaopt_cli.comparison.groups import group_runs
    from metaopt_cli.comparison.runs import find_runs

    copy = tmp_path / "sweep"
    for job in ("0", "1"):
        shutil.copytree(sweep / job, copy / job)
    metrics = copy / "1" / "metrics.jsonl"
    records = metrics.read_text().splitlines()
    metrics.write_text("\n".join(records[:2]) + "\n" + records[2][:10])  # two records, then a line cut short
    (group,) = group_runs(find_runs([str(copy)]))
    curve = dict(group.meta_loss())
    losses = [[json.loads(line)["meta_loss"] for line in (copy / job / "metrics.jsonl").read_text().splitlines()
               if line.endswith("}")] for job in ("0", "1")]
    assert [curve[step].n for step in sorted(curve)] == [2, 2, 1, 1]
    assert curve[1].mean == pytest.approx((losses[0][0] + losses[1][0]) / 2)
    assert curve[4].mean == pytest.approx(losses[0][3]) and curve[4].ci95 is None


@pytest.mark.parametrize("args, fragments", [
    (["no/such/folder"], ["no/such/folder does not exist", "pass the folder of a sweep"]),
    (["{empty}"], ["holds no `metaopt train` run", "pass a sweep's folder"]),
    (["{sweep}", "--metrics", "distilled_test_acc,val_acc"],
     ["no run reports val_acc", "choose --metrics among steps", "distilled_test_acc", "wall_seconds"]),
    (["{sweep}", "--metrics", "a,,b"], ["has an empty name", "--metrics a,b"]),
    (["{sweep}", "--out", "{file}"], ["cannot write into", "pass --out <a writable folder>"]),
    (["{sweep}", "--spread", "sem"], ["--spread", "'sem'", "ci95", "std", "metaopt compare --help"]),
    ([], ["the following arguments are required: FOLDER", "metaopt compare --help"]),
])
def test_bad_input_is_one_error_line(sweep, tmp_path, args, fragments):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    places = {"sweep": sweep, "empty": tmp_path / "empty", "file": tmp_path / "file"}
    result = run_in_process(["compare", *(arg.format(**places) for arg in args)], tmp_path)
    assert_user_error(result, *fragments)


def test_help(tmp_path):
    result = run_in_process(["compare", "--help"], tmp_path)
    assert result.returncode == 0 and "usage: metaopt compare" in result.stdout and "--metrics" in result.stdout
    listing = run_in_process(["--help"], tmp_path)
    assert "compare" in listing.stdout


def test_shell_completion_leaves_folder_names_to_the_shell(tmp_path):
    """Hydra's bash completion is installed with `-o default`: no words from us, and bash offers file names."""
    result = run_in_process(["-sc", "query=bash"], tmp_path, env={"COMP_LINE": "metaopt compare out"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("value, text", [
    (Estimate(0.58899, 0.0981, 3), "0.589 ± 0.098"),  # to the interval's second significant digit
    (Estimate(1234.7, 52.3, 3), "1235 ± 52"),
    (Estimate(0.123456, None, 1), "0.1235"),  # one seed: no interval
])
def test_figures_as_precise_as_their_interval(value, text):
    assert shown(value) == text


def test_figures_as_precise_as_their_std():
    value = Estimate(0.58899, 0.0981, 3, std=0.0395)
    assert shown(value, "std") == "0.589 ± 0.040" and shown(value) == "0.589 ± 0.098"
    assert shown(Estimate(0.123456, None, 1, None), "std") == "0.1235"
