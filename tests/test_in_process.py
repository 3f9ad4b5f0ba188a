"""The in-process runner most CLI tests use: it gives what a subprocess would (so that a traceback
still fails assert_user_error), and a run leaves nothing behind for the next test."""
import logging
import os
import signal
import subprocess
import sys

import pytest
import torch

from conftest import TINY, assert_user_error, run_in_process


def boom(*args, **kwargs):
    raise RuntimeError("boom")


@pytest.mark.parametrize(("module", "name", "args"), [
    ("metaopt_cli.startup", "check_command_line", ["train", *TINY]),  # before Hydra starts the app
    ("metaopt_cli.commands.list", "task_by_estimator", ["list"]),  # inside it, where Hydra reports it
])
def test_an_escaping_exception_is_a_traceback_and_status_1(tmp_path, monkeypatch, module, name, args):
    monkeypatch.setattr(f"{module}.{name}", boom)
    result = run_in_process(args, tmp_path)
    assert result.returncode == 1, result
    assert "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr
    with pytest.raises(AssertionError):
        assert_user_error(result)


def process_state() -> tuple:
    """What a run changes in the process, torch's global generator last."""
    return (os.getcwd(), dict(os.environ), list(sys.argv), torch.get_default_dtype(),
            list(logging.getLogger().handlers), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
            torch.get_rng_state())


def test_a_run_leaves_the_process_as_it_found_it(tmp_path):
    """A float64 run (torch's default dtype), seeded, with Hydra's logging to a file and the
    trainer's signal handlers; then a sweep whose job fails, whose failure must not end the next run."""
    before = process_state()
    run = run_in_process(["train", *TINY, "trainer.dtype=float64", "trainer.meta_steps=1", "hydra.run.dir=run"],
                         tmp_path, env={"SOME_SETTING": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "run" / "train.log").exists()  # Hydra's file handler was there, and is gone
    after = process_state()
    assert after[:-1] == before[:-1] and torch.equal(after[-1], before[-1])
    failed = run_in_process(["train", "-m", "trainer.outer_lr=1e9", "trainer.outer_optimizer=sgd", *TINY,
                             "hydra.sweep.dir=sweep"], tmp_path)
    assert_user_error(failed, "1 of 1 jobs failed")
    fine = run_in_process(["train", *TINY, "trainer.meta_steps=1", "hydra.run.dir=fine"], tmp_path)
    assert fine.returncode == 0, fine.stderr[-3000:]


def test_a_run_past_its_time_limit_is_stopped(tmp_path):
    cwd, alarm = os.getcwd(), signal.getsignal(signal.SIGALRM)
    with pytest.raises(subprocess.TimeoutExpired):
        run_in_process(["train", *TINY, "trainer.meta_steps=1000000", "hydra.run.dir=run"], tmp_path, timeout=2)
    assert os.getcwd() == cwd and signal.getsignal(signal.SIGALRM) == alarm
