"""A run directory is data: reading one never runs code, and resume/eval write only inside it."""
import shlex
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from metaopt_cli.errors import UserError
from metaopt_cli.run_config import RUN_KEYS, resume_command, run_overrides
from metaopt_cli.tasks.lopt.optimizer import LearnedOptimizer

from conftest import TINY, assert_user_error, read_json, run_in_process

LOPT_TINY = ["task=learned_opt", "estimator=backprop", "task.horizon=4", "task.test_horizon=4", "task.test_seeds=2",
             "task.adam_lrs=[0.01]", "task.sgd_lrs=[0.1]", "trainer.meta_steps=2", "trainer.meta_batch=1",
             "trainer.progress=false", "logger=none"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny distill run of 2 meta-steps; tests copy it before changing anything."""
    cwd = tmp_path_factory.mktemp("finished")
    result = run_in_process(["train", *TINY, "trainer.meta_steps=2", "hydra.run.dir=run"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    shutil.copytree(finished_run, tmp_path / "run")
    return tmp_path / "run"


def craft_config(run_dir: Path, target_file: Path) -> None:
    """A config.yaml whose every node, instantiated, would open (create) `target_file`."""
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    opener = {"_target_": "builtins.open", "file": str(target_file), "mode": "w"}
    for node in ("task", "estimator", "backbone", "data", "logger"):
        config[node] = dict(opener)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))


def test_a_crafted_config_yaml_is_never_instantiated_by_resume_or_eval(run_copy, tmp_path):
    pwned = tmp_path / "pwned"
    craft_config(run_copy, pwned)
    evaluated = run_in_process(["eval", f"run={run_copy}"], tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    resumed = run_in_process(["train", f"resume={run_copy}", "trainer.meta_steps=3"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not pwned.exists()
    # The run went on with its own recorded settings, composed from metaopt's configs.
    summary = read_json(run_copy / "summary.json")
    assert (summary["task"], summary["estimator"], summary["steps"]) == ("distill", "tbptt", 3)


@pytest.mark.parametrize("line", [
    "data._target_=builtins.open",
    "logger={_target_: builtins.open, file: pwned, mode: w}",
    "+estimator._partial_=true",
    "hydra.run.dir=/tmp",
    "hydra/launcher=basic",
    "trainer.outer_lr=0.1,0.2",
])
def test_recorded_overrides_that_name_code_are_refused(run_copy, line):
    overrides = run_copy / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text() + yaml.safe_dump([line]))
    for command, key in RUN_KEYS.items():
        with pytest.raises(UserError, match="may not set") as refused:
            run_overrides(command, [f"{key}={run_copy}"], multirun=False, required=True)
        assert str(overrides) in str(refused.value)


def test_the_cli_refuses_a_crafted_override_in_one_line(run_copy, tmp_path):
    overrides = run_copy / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text() + yaml.safe_dump(["data._target_=builtins.open"]))
    for args in (["eval", f"run={run_copy}"], ["train", f"resume={run_copy}"]):
        assert_user_error(run_in_process(args, tmp_path), str(overrides), "may not set")


@pytest.mark.parametrize(("name", "text"), [
    ("overrides.yaml", "- trainer.meta_steps=[\n"),
    ("overrides.yaml", "{not: a list}\n"),
    ("hydra.yaml", "hydra:\n  runtime:\n    choi"),
    ("hydra.yaml", "hydra:\n  runtime:\n    choices:\n      task: ../../elsewhere\n"),
    ("hydra.yaml", "\x00\x01: ["),
])
def test_a_damaged_run_file_is_one_line_naming_it(run_copy, name, text):
    (run_copy / ".hydra" / name).write_text(text)
    for command, key in RUN_KEYS.items():
        with pytest.raises(UserError, match="damaged") as refused:
            run_overrides(command, [f"{key}={run_copy}"], multirun=False, required=True)
        assert str(run_copy / ".hydra" / name) in str(refused.value)


@pytest.mark.slow
def test_a_truncated_config_yaml_is_not_read(run_copy, tmp_path):
    (run_copy / ".hydra" / "config.yaml").write_text("task:\n  _target_: [")
    result = run_in_process(["eval", f"run={run_copy}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow  # four commands in a row: 30-50 s on a loaded 2-core machine
def test_resume_and_eval_write_only_inside_the_run_and_record_the_resumes_overrides(run_copy, tmp_path):
    first = read_json(run_copy / "summary.json")
    resumed = run_in_process(["train", f"resume={run_copy}", "trainer.meta_steps=3"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    recorded = (run_copy / ".hydra" / "overrides.yaml").read_bytes()
    assert "trainer.meta_steps=3" in yaml.safe_load(recorded)
    # A finished run resumed bare keeps its step count and its measured peak memory.
    again = run_in_process(["train", f"resume={run_copy}"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = read_json(run_copy / "summary.json")
    assert summary["steps"] == 3 and summary["peak_mem_bytes"] > 0
    assert first["steps"] == 2
    evaluated = run_in_process(["eval", f"run={run_copy}"], tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert read_json(run_copy / "eval" / "eval.json")["steps"] == 3
    assert (run_copy / ".hydra" / "overrides.yaml").read_bytes() == recorded  # eval leaves the run's record alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no outputs/<date>/<time>/ beside it
    assert [line["step"] for line in map(yaml.safe_load, (run_copy / "metrics.jsonl").read_text().splitlines())] \
        == [1, 2, 3]


def test_a_run_directory_with_a_space_and_a_quote_resumes(run_copy, tmp_path):
    """As the printed resume command gives it, pasted into a shell."""
    odd = tmp_path / "it's a run, [1]"
    run_copy.rename(odd)
    result = run_in_process([*shlex.split(resume_command(odd))[1:], "trainer.meta_steps=3"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(odd / "summary.json")["steps"] == 3


@pytest.mark.parametrize(("args", "fragments"), [
    (["eval"], ["metaopt eval needs run=<run dir>"]),
    (["train", "resume="], ["resume= names no run directory"]),
    (["train", "resume=nowhere"], ["not a metaopt run directory"]),
    (["train", "-m", "resume=a,b"], ["cannot be swept"]),
])
def test_naming_no_run_is_one_line(tmp_path, args, fragments):
    assert_user_error(run_in_process(args, tmp_path), *fragments)
    assert list(tmp_path.iterdir()) == []


def test_from_run_ignores_a_crafted_config_and_refuses_crafted_overrides(tmp_path):
    result = run_in_process(["train", *LOPT_TINY, "hydra.run.dir=lopt"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir, pwned = tmp_path / "lopt", tmp_path / "pwned"
    craft_config(run_dir, pwned)
    model = torch.nn.Linear(3, 1)
    optimizer = LearnedOptimizer.from_run(model.parameters(), run_dir)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    assert not pwned.exists()
    overrides = run_dir / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text() + yaml.safe_dump(["task._target_=builtins.open"]))
    with pytest.raises(UserError, match="may not set"):
        LearnedOptimizer.from_run(model.parameters(), run_dir)
