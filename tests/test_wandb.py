"""W&B faults: a server that cannot be reached, credentials that are missing. Never any
network: the only address used is a closed port on this machine."""
import os
import socket
import subprocess

import pytest

from conftest import TINY, assert_user_error, read_json, run_cli

WITH_WANDB = [o for o in TINY if o != "logger=none"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free once closed: nothing listens there


@pytest.mark.slow  # W&B's own retries take about 15 s before init_timeout ends them
def test_auto_mode_with_a_key_and_no_server_finishes_the_run_offline(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("WANDB_MODE", "HYDRA_FULL_ERROR")}
    env.update(WANDB_API_KEY="0" * 40, WANDB_BASE_URL=f"http://127.0.0.1:{closed_port()}",
               WANDB_DIR=str(tmp_path / "wb"), HOME=str(tmp_path))
    result = subprocess.run(["metaopt", "train", *WITH_WANDB, "logger.mode=auto", "logger.init_timeout=3",
                             "hydra.run.dir=run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("W&B unreachable") == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert read_json(tmp_path / "run" / "summary.json")["steps"] == 4
    assert len(list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
    assert "wandb sync" in result.stdout


def test_online_mode_without_credentials_is_one_line(tmp_path):
    result = run_cli(["train", *WITH_WANDB, "logger.mode=online"], tmp_path, env={"HOME": str(tmp_path)})
    assert_user_error(result, "logger.mode=online needs W&B credentials", "logger.mode=auto")
    assert not (tmp_path / "outputs").exists()  # refused at start-up, before Hydra makes a run folder
