"""Faults around a run — Ctrl-C outside a meta-step, a full disk, a folder that cannot be
written, a name too long — end in one line, never a traceback."""
import errno
import json
import math
import os
import signal
import subprocess
import time

import pytest

from metaopt_cli import startup
from metaopt_cli.errors import UserError
from metaopt_cli.summary import strict_json
from metaopt_cli.tracking.metrics_file import MetricsFile
from metaopt_cli.write_faults import writing

from conftest import TINY, assert_user_error, run_in_process


def interrupt(args: list[str], cwd, when) -> subprocess.CompletedProcess:
    """Run the CLI and send SIGINT once `when()` holds."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    process = subprocess.Popen(["metaopt", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    started = time.monotonic()
    while not when(time.monotonic() - started):
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def assert_interrupted(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 130, (result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if line.startswith("interrupted (SIGINT)")]


@pytest.mark.parametrize("seconds", [0.2, 1.0, 2.5])
def test_ctrl_c_during_start_up_is_one_line_and_status_130(tmp_path, seconds):
    assert_interrupted(interrupt(["train", *TINY, "hydra.run.dir=run"], tmp_path, lambda elapsed: elapsed > seconds))


def test_ctrl_c_during_the_final_evaluation_is_one_line_and_status_130(tmp_path):
    """The only checkpoint is the last step's, written just before the final evaluation (which
    takes seconds here)."""
    args = ["train", *TINY, "trainer.meta_steps=2", "trainer.checkpoint_every=1000", "task.eval_models=20",
            "task.eval_steps=300", "hydra.run.dir=run"]
    checkpointed = []

    def evaluating(elapsed: float) -> bool:
        if not checkpointed and (tmp_path / "run" / "checkpoint.pt").exists():
            checkpointed.append(elapsed)
        return bool(checkpointed) and elapsed > checkpointed[0] + 0.3

    result = interrupt(args, tmp_path, evaluating)
    assert_interrupted(result)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_full_disk_while_checkpointing_is_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt.tmp").symlink_to("/dev/full")  # every write: ENOSPC
    line = assert_user_error(run_in_process(["train", *TINY, "hydra.run.dir=run"], tmp_path), "No space left on device",
                             "free some space")
    assert str(tmp_path / "run") in line


def test_a_full_disk_while_logging_metrics_names_the_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    metrics = MetricsFile(path, resume_step=0)
    metrics.file.close()
    metrics.file = open("/dev/full", "a")
    with pytest.raises(UserError, match=f"cannot write {path} .No space left on device"):
        metrics.write({"step": 1, "meta_loss": 0.5})


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_a_write_fault_names_the_file_and_the_way_out(tmp_path, code):
    with pytest.raises(UserError, match=f"cannot write {tmp_path / 'checkpoint.pt'} .*hydra.run.dir"):
        with writing(tmp_path):
            raise OSError(code, os.strerror(code), str(tmp_path / "checkpoint.pt"))
    with pytest.raises(PermissionError):  # a file outside the run (a dataset) is not the run's to explain
        with writing(tmp_path):
            raise PermissionError(errno.EACCES, "Permission denied", "/data/mnist/train-images")


def test_a_run_dir_name_too_long_for_the_file_system_is_one_line(tmp_path):
    assert_user_error(run_in_process(["train", *TINY, f"hydra.run.dir={'a' * 300}"], tmp_path),
                      "hydra.run.dir", "longer than this file system allows", "shorter")
    assert list(tmp_path.iterdir()) == []


def test_a_run_dir_under_a_read_only_folder_is_refused_before_hydra_creates_it(tmp_path, monkeypatch):
    # As root, chmod cannot make a folder unwritable; the check asks the OS through os.access.
    monkeypatch.setattr(startup.os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match=f"cannot create {tmp_path / 'run'}, since {tmp_path} is not writable"):
        startup.check_output_dir(str(tmp_path / "run"), "hydra.run.dir")


@pytest.mark.parametrize(("args", "fragments"), [
    (["train", "+trainer.foo=1"], ["unknown key 'trainer.foo'", "metaopt train --cfg job"]),
    (["train", "+trainer.meta_step=1"], ["did you mean 'trainer.meta_steps'"]),
    (["train", "-m", "--cfg", "job"], ["drop -m"]),
])
def test_command_lines_hydra_would_accept_wrongly_or_with_a_traceback(tmp_path, args, fragments):
    assert_user_error(run_in_process(args, tmp_path), *fragments)
    assert list(tmp_path.iterdir()) == []


def test_summaries_are_strict_json():
    text = strict_json({"acc": math.nan, "loss": [1.0, math.inf], "steps": 3})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}")) == {
        "acc": None, "loss": [1.0, None], "steps": 3}
