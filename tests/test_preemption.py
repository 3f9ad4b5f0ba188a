"""SIGUSR2, SLURM's warning before preemption or a time limit: the run checkpoints at the end of
the meta-step, then hands the signal to the handler that was there before it (submitit's, which
requeues the job), and a run started again in the same directory continues from there."""
import os
import signal

import pytest
import torch

from metaopt_cli import trainer
from metaopt_cli.errors import UserError
from ranks import train_here

RUN = ["task=distill", "estimator=backprop", "task.horizon=4", "task.real_batch=32", "task.eval_models=2",
       "task.eval_steps=2", "task.eval_lrs=[0.1]", "backbone.hidden=[8]", "trainer.meta_batch=2",
       "trainer.progress=false", "logger=none", "trainer.meta_steps=6", "trainer.checkpoint_every=100"]


def test_sigusr2_checkpoints_then_hands_over_and_the_rerun_continues(tmp_path, monkeypatch):
    seen = []

    def requeue(signum, frame):  # what submitit does: the checkpoint must be there by now
        seen.append((signum, torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"]))

    step, steps = trainer.meta_step, []

    def warned_at_step_3(*args, **kwargs):
        result = step(*args, **kwargs)
        steps.append(result)
        if len(steps) == 3:
            os.kill(os.getpid(), signal.SIGUSR2)
        return result

    monkeypatch.setattr(trainer, "meta_step", warned_at_step_3)
    previous = signal.signal(signal.SIGUSR2, requeue)
    try:
        with pytest.raises(SystemExit) as stopped:
            train_here(RUN, tmp_path / "run")
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert stopped.value.code == 128 + signal.SIGUSR2
    assert seen == [(signal.SIGUSR2, 3)]
    monkeypatch.setattr(trainer, "meta_step", step)
    summary = train_here(RUN, tmp_path / "run")  # the requeued job, in the same run directory
    assert summary["steps"] == 6
    train_here(RUN, tmp_path / "whole")
    whole, rerun = (torch.load(tmp_path / name / "checkpoint.pt", weights_only=True) for name in ("whole", "run"))
    for name, value in whole["meta_params"].items():
        assert torch.equal(value, rerun["meta_params"][name]), name


def test_a_folder_holding_another_runs_checkpoint_is_refused(tmp_path):
    train_here(RUN, tmp_path / "run")
    with pytest.raises(UserError, match="holds the checkpoint of another run .task=distill"):
        train_here(["experiment=maml_sinusoid", "trainer.meta_steps=2", "logger=none"], tmp_path / "run")
