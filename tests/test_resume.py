"""Checkpoints: atomic writes, and a resumed run equal to an uninterrupted one."""
import json
import signal
import subprocess
import time

import pytest
import torch

from metaopt_cli.checkpoint import load_checkpoint, save_checkpoint

from conftest import TINY, run_in_process

SLOWER = [*TINY, "estimator=backprop", "task.horizon=20", "trainer.checkpoint_every=1000"]


def final_state(run_dir):
    checkpoint = load_checkpoint(run_dir)  # weights_only: what every checkpoint must load with
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for record in metrics:
        record.pop("wall_seconds")
    return checkpoint, metrics


def assert_same_run(run_a, run_b):
    checkpoint_a, metrics_a = final_state(run_a)
    checkpoint_b, metrics_b = final_state(run_b)
    assert checkpoint_a["step"] == checkpoint_b["step"]
    for name, value in checkpoint_a["meta_params"].items():
        assert torch.equal(value, checkpoint_b["meta_params"][name]), name  # bit-identical on CPU
    assert metrics_a == metrics_b


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("whole")
    result = run_in_process(["train", *SLOWER, "trainer.meta_steps=40", "hydra.run.dir=run"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "run"


@pytest.mark.slow
def test_resume_continues_to_the_uninterrupted_result(uninterrupted, tmp_path):
    first = run_in_process(["train", *SLOWER, "trainer.meta_steps=15", "hydra.run.dir=run"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_in_process(["train", f"resume={tmp_path / 'run'}", "trainer.meta_steps=40"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(uninterrupted, tmp_path / "run")


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_matches(uninterrupted, tmp_path):
    args = ["metaopt", "train", *SLOWER, "trainer.meta_steps=40", "hydra.run.dir=run"]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    stopped_at = load_checkpoint(tmp_path / "run")["step"]
    assert 3 <= stopped_at < 40
    resumed = run_in_process(["train", f"resume={tmp_path / 'run'}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(uninterrupted, tmp_path / "run")


def test_a_crash_while_saving_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"step": 1, "meta_params": {"x": torch.ones(3)}})

    def crash(obj, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, {"step": 2, "meta_params": {"x": torch.zeros(3)}})
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)["step"] == 1


def test_resume_refuses_to_change_a_group(tmp_path):
    from conftest import assert_user_error

    run = run_in_process(["train", *TINY, "estimator=backprop", "trainer.meta_steps=1", "hydra.run.dir=run"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = run_in_process(["train", f"resume={tmp_path / 'run'}", "estimator=tbptt"], tmp_path)
    assert_user_error(result, "estimator=tbptt cannot apply to an existing run, which used estimator=backprop",
                      "leave estimator= out")


@pytest.mark.parametrize("estimator", [["experiment=influence_balancing", "estimator.particles=8"],
                                       ["experiment=influence_balancing_tbptt"]], ids=["pes", "tbptt"])
def test_resume_continues_an_online_unroll_exactly(tmp_path, estimator):
    """Online PES and TBPTT carry their runs across meta-steps; the checkpoint keeps them as
    tensors, and the problem is sampled again from the generator state it was drawn from."""
    online = [*estimator, "trainer.progress=false", "logger=none"]
    whole = run_in_process(["train", *online, "trainer.meta_steps=30", "hydra.run.dir=whole"], tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    first = run_in_process(["train", *online, "trainer.meta_steps=13", "hydra.run.dir=split"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_in_process(["train", f"resume={tmp_path / 'split'}", "trainer.meta_steps=30"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(tmp_path / "whole", tmp_path / "split")
