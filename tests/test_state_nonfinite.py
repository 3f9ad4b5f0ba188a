"""A run whose meta-loss turns non-finite stops with one line naming the knob, and keeps the
checkpoint from before the outer step that overshot, so that lowering the knob and resuming goes on."""
import json
from types import SimpleNamespace

import pytest
import torch

from metaopt_cli.checkpoint import load_checkpoint
from metaopt_cli.divergence import diverged
from metaopt_cli.run_config import resume_command

from conftest import assert_user_error, read_json, run_in_process

HPO = ["task=hpo", "estimator=backprop", "task.horizon=5", "trainer.meta_batch=1", "trainer.progress=false",
       "logger=none", "task.eval_seeds=2", "task.random_search_trials=1", "trainer.checkpoint_every=1"]


def test_an_overshooting_outer_step_is_rolled_back_and_a_lower_lr_resumes(tmp_path):
    run_dir = tmp_path / "run 1"  # a space: the printed command must still paste
    diverging = run_in_process(["train", *HPO, "trainer.meta_steps=6", "trainer.outer_lr=1e4", "hydra.run.dir=run 1"],
                               tmp_path)
    line = assert_user_error(diverging, "non-finite at meta-step 2", "checkpoint of meta-step 0",
                             "lower trainer.outer_lr (now 10000.0)")
    assert f"{resume_command(run_dir)} trainer.outer_lr=<smaller>" in line
    kept = load_checkpoint(run_dir)
    assert kept["step"] == 0
    assert all(torch.isfinite(value).all() for value in kept["meta_params"].values())
    resumed = run_in_process(["train", f"resume={run_dir}", "trainer.outer_lr=0.01"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_json(run_dir / "summary.json")["steps"] == 6
    assert [line.count('"step"') for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1] * 6
    assert {json.loads(line)["outer_lr"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()} == {0.01}


def test_a_divergence_before_any_outer_step_names_the_inner_step_and_keeps_nothing(tmp_path):
    result = run_in_process(["train", *HPO, "trainer.meta_steps=3", "task.lr=1e30", "hydra.run.dir=run"], tmp_path)
    assert_user_error(result, "non-finite at meta-step 1, before any outer step", "start the run again")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_inner_step_knob_is_the_one_named_before_any_outer_step(tmp_path):
    task = SimpleNamespace(inner_step_knob="task.lr")
    error = diverged("the meta-loss", 0, None, task, None, None, tmp_path, save=None)  # nothing to save yet
    assert "lower task.lr and start the run again" in str(error)


@pytest.mark.slow
def test_a_divergence_right_after_resuming_says_resuming_cannot_step_back(tmp_path):
    first = run_in_process(["train", *HPO, "trainer.meta_steps=1", "trainer.outer_lr=1e4", "hydra.run.dir=run"],
                           tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_in_process(["train", "resume=run", "trainer.meta_steps=3"], tmp_path)
    assert_user_error(resumed, "non-finite at meta-step 2, the first step after resuming", "cannot step back",
                      "start the run again with a lower trainer.outer_lr")
    assert load_checkpoint(tmp_path / "run")["step"] == 1
