"""Hydra's sweepers that search (Optuna's): `metaopt train` returns trainer.objective, the start-up
check validates a search's first point, a failed trial is reported at the end of the sweep."""
import math

import pytest
import yaml

from hydra.errors import MissingConfigException

from metaopt_cli.objective import objective_value
from metaopt_cli.startup import OPTUNA_CONFIG, describe_config_error

from conftest import TINY, assert_user_error, read_json, run_in_process

# Two trials of a two-value choice that try both values (TPE's first trials are random draws, from
# its seed). Not the grid sampler: Optuna's sweeper stops with a RuntimeError (Study.stop outside
# an objective) when the grid's last trial fails.
SEEDED_TWO = ["hydra.sweeper.sampler.seed=0", "hydra.sweeper.n_trials=2"]
# task=hpo shrunk to a second or two a run.
HPO_TINY = ["task=hpo", "trainer.meta_steps=2", "trainer.meta_batch=1", "trainer.progress=false", "task.horizon=10",
            "task.decay_steps=10", "task.eval_seeds=2", "task.random_search_trials=2", "logger=none"]


def test_an_optuna_sweep_of_the_preset_reports_its_best_value(tmp_path):
    """The preset's search space and the command line's interval together, on digits: each trial
    returns its validation loss, and the sweeper's best is the lowest of the runs' summaries."""
    result = run_in_process(["train", "-m", "hparams_search=hpo_optuna", *HPO_TINY, "hydra.sweeper.n_trials=3",
                             "task.momentum=interval(0.5,0.9)", "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    summaries = [read_json(tmp_path / "sweep" / str(job) / "summary.json") for job in range(3)]
    assert all(summary["objective"] == "learned_val_loss" for summary in summaries)
    assert best["best_value"] == pytest.approx(min(summary["learned_val_loss"] for summary in summaries))
    assert set(best["best_params"]) == {"trainer.outer_lr", "task.lr", "task.momentum"}
    assert 0.5 <= best["best_params"]["task.momentum"] <= 0.9


def test_a_failed_trial_is_reported_at_the_end_and_the_sweep_goes_on(tmp_path):
    """Optuna's sweeper counts a result it cannot rank as a failed trial; the sweep's closing line
    says which job failed and why, as for Hydra's basic sweeper."""
    result = run_in_process(["train", "-m", "hydra/sweeper=optuna", *SEEDED_TWO,
                             "hydra.sweeper.direction=maximize", "trainer.outer_lr=choice(1e9,1e-3)",
                             "trainer.outer_optimizer=sgd", *TINY, "hydra.sweep.dir=sweep"], tmp_path)
    assert_user_error(result, "1 of 2 jobs failed", "(trainer.outer_lr=1000000000.0)", "non-finite")
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best["best_params"] == {"trainer.outer_lr": 0.001}


def test_a_run_whose_objective_is_nan_is_a_failed_trial(tmp_path, monkeypatch):
    """Optuna's sweeper would stop at a NaN; the run counts as failed, and the other trial wins."""
    def train(cfg, *args):
        return {"objective": "learned_val_loss", "learned_val_loss": math.nan if cfg.trainer.outer_lr > 1 else 0.5}

    monkeypatch.setattr("metaopt_cli.commands.train.train", train)
    result = run_in_process(["train", "-m", "hydra/sweeper=optuna", *SEEDED_TWO, *HPO_TINY,
                             "trainer.outer_lr=choice(2,0.01)", "hydra.sweep.dir=sweep"], tmp_path)
    assert_user_error(result, "1 of 2 jobs failed: #", "(trainer.outer_lr=2)", "its objective learned_val_loss is nan")
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best == {"name": "optuna", "best_params": {"trainer.outer_lr": 0.01}, "best_value": 0.5}


@pytest.mark.parametrize("sweep", [
    "trainer.outer_lr=interval(0.001,0.1)",
    "trainer.outer_lr=tag(log,interval(0.001,0.1))",
    "trainer.meta_steps=range(1,3)",
    "trainer.outer_lr=choice(0.01,0.1)",
])
def test_a_search_passes_start_up_under_a_sweeper_that_searches(tmp_path, monkeypatch, sweep):
    """Start-up composes and checks the search's first point, then hands over to Hydra (here a
    stand-in for the sweep itself)."""
    started = []
    monkeypatch.setattr("metaopt_cli.commands.train.main", lambda: started.append(True))
    result = run_in_process(["train", "-m", "hydra/sweeper=optuna", *HPO_TINY, sweep], tmp_path)
    assert result.returncode == 0 and started, result.stderr[-3000:]


@pytest.mark.parametrize(("args", "fragments"), [
    # The first point of an interval is its lower bound, which the trainer refuses.
    ([*HPO_TINY, "hydra/sweeper=optuna", "trainer.outer_lr=interval(0,0.1)"], ["trainer.outer_lr must be positive"]),
    # A search over a key the config lacks fails before any trial.
    ([*HPO_TINY, "hydra/sweeper=optuna", "task.nope=interval(0,1)"], ["unknown key 'task.nope'"]),
    # The preset's search space (hydra.sweeper.params) is checked like the command line's.
    (["hparams_search=hpo_optuna", "task=maml"], ["unknown key 'task.lr'"]),
    ([*HPO_TINY, "trainer.outer_lr=interval(0.001,0.1)"], ["basic sweeper", "hydra/sweeper=optuna"]),
    (["hydra/sweeper=optuna", "task=maml"], ["hydra.sweeper.direction=minimize", "val_acc is to maximize",
                                             "pass hydra.sweeper.direction=maximize"]),
    ([*HPO_TINY, "trainer.objective=val_accuracy"], ["trainer.objective=val_accuracy", "task=hpo reports no such "
                                                     "figure", "learned_val_loss, learned_val_loss_std",
                                                     "bayes_opt_test_acc"]),
])
def test_a_bad_search_is_one_error_line(tmp_path, args, fragments):
    assert_user_error(run_in_process(["train", "-m", *args], tmp_path), *fragments)


def test_an_unknown_objective_fails_a_single_run_at_start_up(tmp_path):
    result = run_in_process(["train", "task=protonet", "trainer.objective=val_loss", "hydra.run.dir=run"], tmp_path)
    assert_user_error(result, "task=protonet reports no such figure; choose one of val_acc, val_acc_ci95, test_acc")
    assert not (tmp_path / "run").exists()


def test_a_missing_optuna_plugin_is_named_with_its_install_command(compose_config):
    """What Hydra raises for hydra/sweeper=optuna (or the preset) where the plugin is not installed."""
    with pytest.raises(MissingConfigException) as caught:
        compose_config("train", ["hydra/sweeper=optuna_not_installed"], hydra_node=True)
    assert caught.value.missing_cfg_file == "hydra/sweeper/optuna_not_installed"  # so "hydra/sweeper/optuna" without it
    missing = MissingConfigException(str(caught.value), missing_cfg_file=OPTUNA_CONFIG, options=caught.value.options)
    assert describe_config_error(missing) == ("hydra/sweeper=optuna needs Hydra's Optuna sweeper plugin: "
                                              "pip install 'metaopt[optuna]'")


def test_a_figure_that_is_missing_or_not_finite_is_nan_for_the_sweeper():
    assert objective_value({"loss": 0.25, "bad": float("inf"), "none": None}, "loss") == 0.25
    assert all(math.isnan(objective_value({"bad": float("inf"), "none": None}, key)) for key in ("bad", "none", "x"))
