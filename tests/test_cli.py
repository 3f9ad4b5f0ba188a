"""The `metaopt` command: the installed script, run in a subprocess as users run it (a run, and its
evaluation by another process), and the rest through its entry point in this process."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY, assert_user_error, read_json, run_cli, run_in_process, scaled_timeout
from torchvision_files import train_on_stand_in_mnist

SUMMARY_KEYS = {"distilled_test_acc", "distilled_test_acc_std", "random_real_test_acc", "random_real_test_acc_std"}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One tiny training run that several tests read."""
    cwd = tmp_path_factory.mktemp("train")
    result = run_cli(["train", *TINY, "hydra.run.dir=run"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "run"


def test_train_writes_the_run_directory(trained_run):
    assert {p.name for p in trained_run.iterdir()} >= {
        ".hydra", "metrics.jsonl", "summary.json", "checkpoint.pt", "distilled.png"
    }
    metrics = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all({"meta_loss", "wall_seconds"} <= set(m) for m in metrics)
    summary = read_json(trained_run / "summary.json")
    assert SUMMARY_KEYS <= set(summary)
    assert (summary["task"], summary["estimator"], summary["steps"]) == ("distill", "tbptt", 4)
    assert summary["peak_mem_bytes"] > 0


def test_eval_reruns_the_evaluation_from_the_checkpoint(trained_run, tmp_path):
    result = run_cli(["eval", f"run={trained_run}", "hydra.run.dir=evaluation"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = read_json(tmp_path / "evaluation" / "eval.json")
    summary = read_json(trained_run / "summary.json")
    # The same evaluation draws, from the same checkpoint: the same figures.
    for key in SUMMARY_KEYS:
        assert report[key] == pytest.approx(summary[key], abs=1e-6)


def test_list_prints_groups_and_matrix_and_writes_nothing(tmp_path):
    result = run_in_process(["list"], tmp_path)
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("\n\n")[0].splitlines()[1:]
    rows = {line.split()[0]: line for line in listing if not line.startswith("   ")}  # not a wrapped line
    assert rows["estimator"].split(None, 1)[1] == "backprop, es, forward, implicit, pes, tbptt"
    assert rows["trainer/outer_scheduler"].split(None, 1)[1] == "constant, cosine, multistep, step"
    # The options start in one column, whatever the longest group's name.
    assert len({len(line) - len(line.split(None, 1)[1]) for line in rows.values()}) == 1
    assert "distill" in result.stdout.split("task × estimator")[1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sweep_makes_a_run_per_estimator_grouped_in_wandb(tmp_path):
    overrides = [o for o in TINY if o != "logger=none"]
    result = run_cli(
        ["train", "-m", "estimator=backprop,tbptt", *overrides, "logger.mode=offline", "hydra.sweep.dir=sweep"],
        tmp_path, env={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wb")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = sorted((tmp_path / "sweep").glob("*/summary.json"))
    assert [read_json(p)["estimator"] for p in summaries] == ["backprop", "tbptt"]
    runs = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 2
    # The group is recorded in each run's log; both carry the sweep's.
    assert all(b"sweep:sweep" in run.read_bytes() for run in runs)
    assert "wandb sync" in result.stdout


def test_help_and_cfg_are_hydras(tmp_path):
    shown = run_in_process(["train", "--cfg", "job", "estimator=backprop"], tmp_path)
    assert shown.returncode == 0 and "_target_: metaopt_cli.estimators.backprop.Backprop" in shown.stdout
    helped = run_in_process(["train", "--help"], tmp_path)
    assert helped.returncode == 0 and "estimator: backprop, es, forward, implicit, pes, tbptt" in helped.stdout


@pytest.mark.parametrize("args", [["--help"], [], ["trian"]])
def test_help_and_a_wrong_command_answer_without_importing_torch(args, tmp_path):
    # In a fresh interpreter: this one imported torch long ago. Importing torch takes seconds.
    code = ("import sys; from metaopt_cli import cli; sys.argv = ['metaopt', *sys.argv[1:]]\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch')")
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=scaled_timeout(60))
    assert result.stdout.splitlines()[-1] == "no torch", result.stdout + result.stderr
    assert "train" in result.stdout + result.stderr


def test_shell_completion_completes_groups_after_the_command(tmp_path):
    result = run_in_process(["-sc", "query=bash"], tmp_path,
                            env={"COMP_LINE": "metaopt train estimator=", "COMP_POINT": "25"})
    assert result.returncode == 0, result.stderr
    assert "estimator=backprop" in result.stdout and "estimator=tbptt" in result.stdout
    commands = run_in_process(["-sc", "query=bash"], tmp_path, env={"COMP_LINE": "metaopt tr", "COMP_POINT": "10"})
    assert "train" in commands.stdout.split()


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["task=nope"], ["unknown task 'nope'", "distill"]),
        (["estimator.truncation=0"], ["estimator.truncation must be at least 1"]),
        (["estimator.truncation=50"], ["longer than task.horizon=10"]),
        (["data=mnist", "data.root=missing"], ["mnist not found under", "data.download=true"]),
        (["estimator.trunaction=5"], ["unknown key 'estimator.trunaction'", "truncation"]),
        (["-m", "estimator=backprop,nope"], ["unknown estimator 'nope'"]),
        (["backbone=conv4"], ["needs images of at least 16×16", "data.image_size=32"]),
        (["data.image_size=-1"], ["data.image_size=-1 must be 0", "e.g. 32"]),
        (["data.image_size=big"], ["data.image_size", "could not be converted to Integer"]),
        (["estimator=implicit"], ["task=distill does not support estimator=implicit", "use backprop"]),
        (["estimator=es", "estimator.sigma=0"], ["estimator.sigma must be positive"]),
        (["estimator=pes", "estimator.particles=0"], ["estimator.particles must be at least 1"]),
        (["estimator=forward", "estimator.mode=exact", "estimator.max_tangents=10"],
         ["one pass per meta-parameter", "estimator.mode=random"]),
    ],
)
def test_user_errors_are_one_line_with_status_2(tmp_path, overrides, fragments):
    assert_user_error(run_in_process(["train", *TINY, *overrides], tmp_path), *fragments)
    assert not list(tmp_path.glob("**/checkpoint.pt"))


@pytest.mark.parametrize("backbone", ["backbone=conv4 backbone.width=4", "backbone=resnet12 backbone.widths=[4,4,8,8]"])
def test_conv_backbones_train_on_the_embedded_digits_upsampled(backbone, tmp_path):
    result = run_in_process(["train", *TINY, *backbone.split(), "data.image_size=32", "task.horizon=2",
                             "estimator.truncation=2", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(tmp_path / "run" / "summary.json")["distilled_test_acc"] > 0


def test_unknown_command(tmp_path):
    assert_user_error(run_in_process(["trian"], tmp_path), "unknown command 'trian'")


def test_non_finite_meta_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    overrides = [*TINY, "trainer.meta_steps=50", "trainer.checkpoint_every=1", "trainer.outer_lr=1e6", "hydra.run.dir=run"]
    line = assert_user_error(run_in_process(["train", *overrides], tmp_path), "non-finite at meta-step",
                             "lower trainer.outer_lr")
    failed_at = int(line.split("meta-step ")[1].split(";")[0])
    import torch

    from metaopt_cli.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint["step"] == failed_at - 2  # the run before the outer step that overshot
    assert all(torch.isfinite(value).all() for value in checkpoint["meta_params"].values())


def test_mnist_experiment_runs_on_stand_in_files(tmp_path):
    """The published-style setup end to end — the condensation papers' ConvNet, RaT-BPTT windows —
    on small files in MNIST's real format, shrunk to seconds."""
    run = train_on_stand_in_mnist(tmp_path, "distill_mnist_10ipc", [
        "task.images_per_class=2", "task.horizon=4", "estimator.truncation=2", "backbone.width=8",
        "trainer.meta_steps=2", "trainer.eval_every=1", "task.eval_models=2", "task.eval_steps=2"])
    summary = read_json(run / "summary.json")
    assert (summary["data"], summary["backbone"], summary["steps"]) == ("mnist", "convnet", 2)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert "distilled_val_acc" in metrics[0] and 2 <= metrics[0]["window_end"] <= 4
