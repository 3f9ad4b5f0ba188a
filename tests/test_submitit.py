"""Sweeps through Hydra's submitit launcher (conf/hydra/launcher/): each job in a process of its
own, as on a SLURM cluster, and a failed job reported as under the in-process launcher."""
import os
import re
import shlex

import pytest
from conftest import TINY, assert_user_error, read_json, run_cli

from metaopt_cli import sweep
from metaopt_cli.errors import UserError
from metaopt_cli.run_config import hydra_string


@pytest.mark.slow  # the failing sweep below runs a job through to its summary too
def test_a_sweep_runs_every_job_in_a_process_of_its_own(tmp_path):
    # The plugin's own local launcher, as its users know it; metaopt's `local` preset is the same
    # with failed jobs reported as the basic launcher reports them (below).
    result = run_cli(["train", "-m", "hydra/launcher=submitit_local", "trainer.seed=0,1", *TINY,
                      "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert read_json(tmp_path / "sweep" / job / "summary.json")["steps"] == 4
    # Each job's own log from submitit: the jobs did not run in the sweep's process.
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/*_0_log.out"))) == 2


def test_a_diverging_job_fails_alone_and_the_sweep_reports_it(tmp_path):
    result = run_cli(["train", "-m", "hydra/launcher=local", "trainer.outer_lr=1e9,1e-3",
                      "trainer.outer_optimizer=sgd", *TINY, "hydra.sweep.dir=sweep"], tmp_path)
    line = assert_user_error(result, "1 of 2 jobs failed: #0 (trainer.outer_lr=1000000000.0)", "non-finite")
    assert "#1" not in line
    assert not (tmp_path / "sweep" / "0" / "summary.json").exists()
    assert read_json(tmp_path / "sweep" / "1" / "summary.json")["steps"] == 4


def test_a_job_of_several_tasks_runs_them_as_the_ranks_of_one_run(tmp_path):
    # What a SLURM job with several GPUs does: submitit starts one task per rank, each running the
    # Hydra job, and they meet as torch.distributed ranks from submitit's task variables.
    result = run_cli(["train", "-m", "hydra/launcher=local", "hydra.launcher.tasks_per_node=2", "trainer.seed=0",
                      *TINY, "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "sweep" / "0" / "summary.json")
    assert summary["ranks"] == 2 and summary["steps"] == 4
    assert [path.name for path in (tmp_path / "sweep" / "0" / "logs").iterdir()] == ["rank1.log"]


def test_the_slurm_preset_shows_its_settings(tmp_path):
    result = run_cli(["train", "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4", "--cfg", "hydra",
                      "--resolve"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    launcher = result.stdout.split("\n  launcher:\n", 1)[1].split("\n  sweeper:", 1)[0]
    for setting in ("_target_: hydra_plugins.metaopt_submitit._launchers.SlurmLauncher", "tasks_per_node: 4",
                    "signal_delay_s: 120", "max_num_timeout: 3", "partition: null", "/.submitit/%j"):
        assert setting in launcher, launcher


def test_an_unknown_launcher_is_one_error_line(tmp_path):
    assert_user_error(run_cli(["train", "-m", "hydra/launcher=slrum", "trainer.seed=0,1"], tmp_path),
                      "unknown hydra/launcher 'slrum'", "slurm", "local")


def test_without_the_plugin_the_presets_name_the_extra(tmp_path):
    # A package of the plugin's name earlier on the path hides the installed plugin.
    hiding = tmp_path / "hiding" / "hydra_plugins" / "hydra_submitit_launcher"
    hiding.mkdir(parents=True)
    (hiding / "__init__.py").touch()
    path = os.pathsep.join(filter(None, [str(tmp_path / "hiding"), os.environ.get("PYTHONPATH")]))
    result = run_cli(["train", "-m", "hydra/launcher=slurm", "trainer.seed=0,1"], tmp_path, env={"PYTHONPATH": path})
    assert_user_error(result, "pip install 'metaopt[slurm]'")


def test_the_slurm_launcher_needs_srun(monkeypatch):
    monkeypatch.setattr(sweep.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="srun is not on this machine.*hydra/launcher=local"):
        sweep.prepare_launcher("hydra_plugins.metaopt_submitit._launchers.SlurmLauncher")


@pytest.mark.slow  # a job that runs until the launcher's time limit: half a minute
def test_a_job_out_of_requeues_is_reported_with_the_command_that_continues_it(tmp_path):
    # The local launcher sends SIGUSR2 30 s before its 1-minute limit, as SLURM does with
    # hydra.launcher.signal_delay_s; with no requeue left, submitit refuses to requeue the job.
    endless = [o for o in TINY if not o.startswith("trainer.meta_steps")] + ["trainer.meta_steps=1000000"]
    result = run_cli(["train", "-m", "hydra/launcher=local", "hydra.launcher.timeout_min=1",
                      "+hydra.launcher.max_num_timeout=0", "trainer.checkpoint_every=5", *endless,
                      "hydra.sweep.dir=sweep"], tmp_path)
    line = assert_user_error(result, "1 of 1 jobs failed: #0", "timed-out too many times",
                             "hydra.launcher.max_num_timeout")
    again = re.search(r"run the sweep again with (\S+) to continue", line).group(1)
    assert shlex.split(again) == [f"hydra.sweep.dir={hydra_string(str(tmp_path / 'sweep'))}"]
    assert (tmp_path / "sweep" / "0" / "checkpoint.pt").exists()
