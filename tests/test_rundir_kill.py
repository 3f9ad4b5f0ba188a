"""Two processes on one run directory, a kill at a random moment, a line cut short: the run's
files stay whole."""
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from metaopt_cli.errors import UserError
from metaopt_cli.tracking.metrics_file import MetricsFile, read_records

from conftest import TINY, assert_user_error, run_in_process

CHECKPOINT_STEP = 4


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.Popen(["metaopt", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> float:
    started = time.monotonic()
    while not condition():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() - started < timeout
        time.sleep(0.01)
    return time.monotonic() - started


def locked(path: Path) -> bool:
    with path.open("a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(file, fcntl.LOCK_UN)
        return False


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory) -> Path:
    """A run checkpointed at step 4 whose metrics.jsonl goes on past it (steps logged after the
    last checkpoint, as when a run dies between checkpoints)."""
    cwd = tmp_path_factory.mktemp("checkpointed")
    args = ["train", *TINY, f"trainer.meta_steps={CHECKPOINT_STEP}", "hydra.run.dir=run"]
    assert run_in_process(args, cwd).returncode == 0
    shutil.copy(cwd / "run" / "checkpoint.pt", cwd / "checkpoint_at_4.pt")
    assert run_in_process(["train", f"resume={cwd / 'run'}", "trainer.meta_steps=6"], cwd).returncode == 0
    shutil.copy(cwd / "checkpoint_at_4.pt", cwd / "run" / "checkpoint.pt")
    return cwd / "run"


@pytest.mark.slow  # three start-ups: about 40 s on a loaded 2-core machine
def test_a_second_process_on_a_run_directory_is_one_line(checkpointed_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(checkpointed_run, run_dir)
    first = start_cli(["train", f"resume={run_dir}", "trainer.meta_steps=100000"], tmp_path)
    try:
        wait_for(lambda: locked(run_dir / "run.lock"), first)
        second = run_in_process(["train", f"resume={run_dir}", "trainer.meta_steps=100000"], tmp_path)
        assert_user_error(second, f"{run_dir} is in use by another metaopt process (pid {first.pid})")
        fresh = run_in_process(["train", *TINY, f"hydra.run.dir={run_dir}"], tmp_path)
        assert_user_error(fresh, "in use by another metaopt process")
    finally:
        first.kill()
        first.wait()
    # kill -9 leaves the lock file behind, but not the lock.
    after = run_in_process(["train", f"resume={run_dir}", "trainer.meta_steps=5", "trainer.checkpoint_every=1"],
                           tmp_path)
    assert after.returncode == 0, after.stderr[-3000:]
    steps = [record["step"] for record in read_records(run_dir / "metrics.jsonl")]
    assert steps == sorted(set(steps))  # no step written twice


@pytest.mark.slow  # eleven start-ups: 160-300 s on a loaded 2-core machine
def test_kill_9_during_resumes_start_up_never_loses_a_line(checkpointed_run, tmp_path):
    """Ten resumes killed at random moments of their start-up, where resume trims the lines
    logged after the checkpoint; the file is large so that the trimming takes a while."""
    run_dir = tmp_path / "run"
    shutil.copytree(checkpointed_run, run_dir)
    metrics = run_dir / "metrics.jsonl"
    records = read_records(metrics)
    padding = [{**records[i % CHECKPOINT_STEP], "padding": i} for i in range(200_000)]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in padding + records))
    kept = [r for r in padding + records if r["step"] <= CHECKPOINT_STEP]
    args = ["train", f"resume={run_dir}", "trainer.meta_steps=100000", "trainer.checkpoint_every=100000"]

    def check() -> None:
        after = read_records(metrics)
        assert after[:len(kept)] == kept
        assert [r["step"] for r in after[len(kept):]] == list(range(CHECKPOINT_STEP + 1, CHECKPOINT_STEP + 1 +
                                                                    len(after) - len(kept)))

    # When, in start-up, the file first changes (however resume replaces it): the kills land
    # within a second of that moment, on either side.
    probe = start_cli(args, tmp_path)
    before = _identity(metrics)
    changed_at = wait_for(lambda: _identity(metrics) != before, probe)
    probe.send_signal(signal.SIGKILL)
    probe.wait()
    check()
    metrics.write_text("".join(json.dumps(r) + "\n" for r in padding + records))
    rng = random.Random(0)
    for _ in range(10):
        process = start_cli(args, tmp_path)
        time.sleep(max(0.0, rng.uniform(changed_at - 1.0, changed_at + 1.0)))
        process.send_signal(signal.SIGKILL)
        process.wait()
        check()


def _identity(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def test_a_line_cut_short_is_dropped_and_the_file_stays_whole(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "meta_loss": 1.0}\n{"step": 2, "meta_loss": 0.5}\n{"step": 3, "meta_lo')
    file = MetricsFile(path, resume_step=3)
    file.write({"step": 3, "meta_loss": float("nan")})
    file.close()
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"step": 1, "meta_loss": 1.0}, {"step": 2, "meta_loss": 0.5}, {"step": 3, "meta_loss": None}]
    assert not path.with_name("metrics.jsonl.tmp").exists()


def test_a_damaged_line_inside_the_file_names_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(UserError, match=f"{path} line 2 is not JSON"):
        MetricsFile(path, resume_step=1)
