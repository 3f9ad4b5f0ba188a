"""A job of several ranks as users start it: torchrun, one run directory, signals, a rank that
dies, and what cannot be split."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import assert_user_error, read_json, scaled_timeout
from ranks import start_ranks

TINY = ["task=distill", "task.horizon=6", "task.real_batch=32", "task.eval_models=2", "task.eval_steps=2",
        "task.eval_lrs=[0.1]", "backbone.hidden=[8]", "trainer.meta_batch=2", "trainer.progress=false",
        "logger=none"]
BACKPROP = [*TINY, "estimator=backprop"]


def torchrun(args: list[str], cwd: Path, env: dict | None = None, **popen) -> subprocess.Popen:
    full_env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               "-m", "metaopt_cli", *args]
    return subprocess.Popen(command, cwd=cwd, env=full_env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)


def wait_for_steps(run_dir: Path, process: subprocess.Popen) -> None:
    """Until the run has logged a meta-step (start-up done, signal handlers in place)."""
    deadline = time.monotonic() + scaled_timeout(120)
    while not (run_dir / "metrics.jsonl").is_file() or not (run_dir / "metrics.jsonl").read_text():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)


def test_torchrun_runs_one_job_in_one_run_directory_with_one_wandb_run(tmp_path):
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wb"), "HOME": str(tmp_path)}
    job = torchrun(["train", *BACKPROP, "trainer.meta_steps=3", "logger=wandb", "logger.mode=offline"], tmp_path, env)
    stdout, stderr = job.communicate(timeout=scaled_timeout(300))
    assert job.returncode == 0, stderr[-3000:]
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 1, runs  # no folder per rank, though each rank composed its own `${now:…}`
    run_dir = runs[0]
    summary = read_json(run_dir / "summary.json")
    assert summary["ranks"] == 2 and summary["steps"] == 3
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert [path.name for path in (run_dir / "logs").iterdir()] == ["rank1.log"]
    assert len(list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
    assert stdout.count("── metaopt: distill × ") == 1  # the summary, from rank 0 alone


def test_sigterm_to_the_job_checkpoints_once_and_the_printed_command_resumes(tmp_path):
    job = torchrun(["train", *BACKPROP, "trainer.meta_steps=100000", "trainer.checkpoint_every=100000",
                    "hydra.run.dir=run"], tmp_path)
    wait_for_steps(tmp_path / "run", job)
    job.send_signal(signal.SIGTERM)
    stdout, stderr = job.communicate(timeout=scaled_timeout(60))
    stopped = re.search(r"stopped by signal 15 after meta-step (\d+); checkpoint saved: continue with `(.+)`", stdout)
    assert stopped, stdout + stderr[-3000:]
    step = int(stopped.group(1))
    assert stdout.count("stopped by signal") == 1
    resumed = subprocess.run(f"{stopped.group(2)} trainer.meta_steps={step + 2} trainer.progress=false", shell=True,
                             cwd=tmp_path, capture_output=True, text=True, timeout=scaled_timeout(180),
                             env={**os.environ, "WANDB_MODE": "disabled"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["steps"] == step + 2 and summary["ranks"] == 1


def test_a_killed_rank_ends_the_others_with_one_line(tmp_path):
    ranks = start_ranks(2, ["train", *BACKPROP, "trainer.meta_steps=100000", "hydra.run.dir=run"], tmp_path)
    wait_for_steps(tmp_path / "run", ranks[0])
    ranks[1].kill()
    killed = time.monotonic()
    stdout, stderr = ranks[0].communicate(timeout=60)
    assert time.monotonic() - killed < 60
    assert ranks[0].returncode == 1
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: rank 0 of 2 lost the job's other ranks"), stderr
    assert "Traceback" not in stdout + stderr
    ranks[1].communicate()


@pytest.mark.parametrize(("overrides", "fragments"), [
    (["estimator=backprop", "trainer.meta_batch=1"], ["2 ranks but trainer.meta_batch (inner problems per meta-step) is 1"]),
    (["estimator=es", "estimator.particles=1"], ["2 ranks but estimator.particles (antithetic pairs) is 1"]),
    (["estimator=backprop", "trainer.device=cuda"], ["trainer.device=cuda but this node has 0 CUDA device(s) for its 2 ranks"]),
], ids=["meta-batch", "particles", "gpus"])
def test_what_cannot_be_split_is_one_line_from_rank_0_alone(tmp_path, overrides, fragments):
    ranks = start_ranks(2, ["train", *TINY, *overrides, "hydra.run.dir=run"], tmp_path)
    results = [subprocess.CompletedProcess(rank.args, 0, *rank.communicate(timeout=scaled_timeout(120)))
               for rank in ranks]
    for rank, result in zip(ranks, results):
        result.returncode = rank.returncode
    assert_user_error(results[0], *fragments)
    assert results[1].returncode == 2 and not results[1].stdout + results[1].stderr
    assert not (tmp_path / "run").exists()
