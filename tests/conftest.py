"""Shared test helpers: the real configs composed through Hydra, and the CLI, installed (in a
subprocess) or in this process."""
import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from metaopt_cli import cli, sweep
from metaopt_cli.config.store import register_configs

# A few meta-steps of a small model: enough to exercise every code path in seconds.
TINY = [
    "trainer.meta_steps=4",
    "trainer.meta_batch=2",
    "trainer.progress=false",
    "task.horizon=10",
    "task.real_batch=64",
    "task.eval_models=2",
    "task.eval_steps=5",
    "task.eval_lrs=[0.1]",
    "logger=none",
]


@pytest.fixture
def compose_config():
    """Compose a command's config from conf/ exactly as the CLI does, with overrides."""
    register_configs()

    def _compose(command: str, overrides: list[str], hydra_node: bool = False):
        GlobalHydra.instance().clear()
        with initialize_config_module("metaopt_cli.conf", version_base="1.3"):
            return compose(config_name=command, overrides=overrides, return_hydra_config=hydra_node)

    yield _compose
    GlobalHydra.instance().clear()


def scaled_timeout(seconds: float) -> float:
    """A CLI run's time limit (in a subprocess or in process), stretched by METAOPT_TEST_TIMEOUT_SCALE
    (default 1) so that a loaded or slow machine (shared CI runners) does not fail a test that would
    pass given time."""
    scale = float(os.environ.get("METAOPT_TEST_TIMEOUT_SCALE", "1"))
    if not scale > 0:
        raise ValueError(f"METAOPT_TEST_TIMEOUT_SCALE must be a positive number, got {scale}")
    return seconds * scale


def run_cli(args: list[str], cwd: Path, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed `metaopt` console script, in a subprocess, as a user runs it; `timeout` is in
    seconds before METAOPT_TEST_TIMEOUT_SCALE stretches it."""
    full_env = {**os.environ, "WANDB_MODE": "disabled", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(["metaopt", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=scaled_timeout(timeout))


class _TimedOut(BaseException):
    """Raised by the timer of an in-process run; a BaseException, so that no `except Exception`
    on the way up (Hydra's, the CLI's) turns it into an error report."""


def run_in_process(args: list[str], cwd: Path, timeout: float = 180,
                   env: dict | None = None) -> subprocess.CompletedProcess:
    """`metaopt <args>` run through its entry point (metaopt_cli.cli.main) in this process, which has
    imported torch and Hydra already: run_cli's result without its seconds of start-up. Status,
    stdout and stderr are the ones a subprocess would give: SystemExit's code; an exception that
    escapes is printed as Python prints it, with status 1. What a run changes in the process (the
    working directory, the environment, argv, torch's default dtype and global generator, Hydra's global state,
    signal handlers, the logging handlers Hydra installs, the sweep's lists) is put back after it.
    Past `timeout` seconds (scaled as run_cli's) the run is stopped and subprocess.TimeoutExpired raised."""
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    saved_dtype = torch.get_default_dtype()
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level

    def time_out(signum, frame):
        raise _TimedOut

    os.environ.update({"WANDB_MODE": "disabled", **(env or {})})
    os.environ.pop("HYDRA_FULL_ERROR", None)
    for kept in (sweep.swept_keys, sweep.jobs, sweep.failures):
        kept.clear()
    GlobalHydra.instance().clear()
    sys.argv = ["metaopt", *args]
    signal.signal(signal.SIGALRM, time_out)
    signal.setitimer(signal.ITIMER_REAL, scaled_timeout(timeout))
    try:
        os.chdir(cwd)
        with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                cli.main()
                returncode = 0
            except SystemExit as exit_:
                returncode = _exit_status(exit_.code)
            except _TimedOut:
                raise subprocess.TimeoutExpired(["metaopt", *args], timeout, stdout.getvalue(), stderr.getvalue())
            except Exception:
                traceback.print_exc()
                returncode = 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        torch.set_default_dtype(saved_dtype)
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()  # Hydra's file handler holds the run's <command>.log open
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return subprocess.CompletedProcess(["metaopt", *args], returncode, stdout.getvalue(), stderr.getvalue())


def _exit_status(code) -> int:
    """The status Python gives SystemExit(code): None is 0, a number itself, anything else is
    printed to stderr with status 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def train_whole_and_resumed(cwd: Path, overrides: list[str], stop_at: int, steps: int) -> tuple[Path, Path]:
    """Two runs of `steps` meta-steps: one straight through, one stopped after `stop_at` and
    resumed; returns their directories."""
    runs = [(["train", *overrides, f"trainer.meta_steps={steps}", "hydra.run.dir=whole"]),
            (["train", *overrides, f"trainer.meta_steps={stop_at}", "hydra.run.dir=parts"]),
            (["train", "resume=parts", f"trainer.meta_steps={steps}"])]
    for args in runs:
        result = run_in_process(args, cwd)
        assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "whole", cwd / "parts"


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Status 2, one `error:` line on stderr, no traceback; returns the line."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def _no_network_wandb(monkeypatch, tmp_path):
    """W&B has no server here: never online, and its files under the test's folder."""
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)



@pytest.fixture
def distill_problem_at():
    """A float64 digits-distillation problem of a given horizon, and its meta-parameters."""
    from metaopt_cli.backbones.mlp import MLP
    from metaopt_cli.data.digits import load
    from metaopt_cli.data.splits import Split, SplitData
    from metaopt_cli.tasks.distill.task import Distill

    data = load(val_fraction=0.2, test_fraction=0.2, split_seed=0)
    data = SplitData(data.name, *(Split(s.x.double(), s.y) for s in (data.train, data.val, data.test)), data.num_classes)

    def make(horizon: int):
        torch.manual_seed(0)
        with torch.random.fork_rng(devices=[]):
            torch.set_default_dtype(torch.float64)
            try:
                task = Distill(data, lambda in_shape, num_outputs: MLP(in_shape, num_outputs, [16]), horizon=horizon,
                               images_per_class=1, learn_labels=True, learn_lr=True, inner_lr=0.1, init="real",
                               real_batch=64, eval_models=2, eval_steps=5, eval_lrs=[0.1])
                generator = torch.Generator().manual_seed(0)
                meta_params = task.init_meta_params(generator)
                return task.sample(generator, 2), meta_params
            finally:
                torch.set_default_dtype(torch.float32)

    return make


@pytest.fixture
def distill_problem(distill_problem_at):
    return distill_problem_at(8)
