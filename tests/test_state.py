"""An online estimator's state is data: tensors and plain numbers, with the problem re-sampled
from the generator state it was drawn from; checkpoints load with weights_only=True."""
import dataclasses
import json
import pathlib
import re
import shutil

import pytest
import torch

from metaopt_cli.build import build, build_task
from metaopt_cli.checkpoint import load_checkpoint, save_checkpoint
from metaopt_cli.errors import UserError
from metaopt_cli.estimators.state import Resample, sample

from conftest import assert_user_error, run_in_process

TASKS = {
    "hpo": ["task=hpo", "task.horizon=4"],
    "learned_opt": ["task=learned_opt", "task.horizon=4"],
    "distill": ["task=distill", "task.horizon=4"],
    "maml_sinusoid": ["task=maml", "data=sinusoid", "task.horizon=2"],
    "maml_digits": ["task=maml", "data=digits", "task.horizon=2", "task.ways=3", "task.queries=2"],
    "protonet": ["task=protonet", "task.ways=3", "task.queries=2"],
    "influence": ["task=influence"],
}


def tensors_of(value, prefix="") -> dict:
    """Every tensor a problem holds, by where it sits (its fields, recursively)."""
    if isinstance(value, torch.Tensor):
        return {prefix: value}
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in tensors_of(item, f"{prefix}.{key}").items()}
    if isinstance(value, (list, tuple)):
        return {k: v for i, item in enumerate(value) for k, v in tensors_of(item, f"{prefix}[{i}]").items()}
    if dataclasses.is_dataclass(value):
        return {k: v for f in dataclasses.fields(value)
                for k, v in tensors_of(getattr(value, f.name), f"{prefix}.{f.name}").items()}
    if hasattr(value, "__dict__") and not isinstance(value, torch.nn.Module):
        return tensors_of(vars(value), prefix)
    return {}


@pytest.mark.parametrize("overrides", TASKS.values(), ids=TASKS.keys())
def test_a_problem_is_determined_by_the_generator_state_it_was_sampled_from(compose_config, overrides):
    cfg = compose_config("train", [*overrides, "trainer.device=cpu"])
    device = torch.device("cpu")
    task = build_task(cfg, device)
    generator = torch.Generator(device).manual_seed(3)
    task.init_meta_params(generator)
    drawn = sample(task, generator, 3)
    torch.manual_seed(12345)  # the global RNG is elsewhere: it must not matter
    torch.rand(7)
    again = Resample(task, device)(drawn.draw)
    first, second = tensors_of(drawn), tensors_of(again)
    assert first.keys() == second.keys() and first
    for where, value in first.items():
        assert torch.equal(value, second[where]), where
    assert torch.equal(again.draw["generator_state"], drawn.draw["generator_state"])


def online_estimator(compose_config, name: str, **extra):
    overrides = [f"estimator={name}", "estimator.online=true", "estimator.truncation=3",
                 *(f"estimator.{k}={v}" for k, v in extra.items())]
    if name == "pes":
        overrides.append("estimator.particles=2")
    return lambda: build(compose_config("train", overrides).estimator)


@pytest.mark.parametrize("name", ["tbptt", "pes"])
@pytest.mark.parametrize("stagger", [False, True])
def test_online_state_is_tensors_and_numbers_and_resumes_exactly(compose_config, tmp_path, name, stagger):
    """Windows continued from a state_dict saved, loaded weights-only and re-sampled equal the
    windows of the estimator that never stopped."""
    cfg = compose_config("train", [*TASKS["hpo"], "trainer.device=cpu", "task.batch_size=16"])
    task = build_task(cfg, torch.device("cpu"))
    make = online_estimator(compose_config, name, stagger=stagger)
    whole, parts = make(), make()
    generator = torch.Generator().manual_seed(0)
    meta_params = task.init_meta_params(generator)

    def window(estimator, gen):
        return estimator.estimate(sample(task, gen, 2), meta_params, gen)

    for _ in range(3):
        window(whole, generator)
    saved_generator = generator.get_state()
    save_checkpoint(tmp_path, {"estimator": whole.state_dict(), "generator": saved_generator})
    checkpoint = load_checkpoint(tmp_path)
    parts.load_state_dict(checkpoint["estimator"], Resample(task, torch.device("cpu")))
    resumed = torch.Generator()
    resumed.set_state(checkpoint["generator"])
    for _ in range(4):  # across the horizon (4): runs restart from fresh problems on the way
        (grads_a, metrics_a), (grads_b, metrics_b) = window(whole, generator), window(parts, resumed)
        assert torch.equal(metrics_a["meta_loss"], metrics_b["meta_loss"])
        for key in grads_a:
            assert torch.equal(grads_a[key], grads_b[key]), key
    # The file holds the runs' states and perturbations and generator states, nothing of the data.
    held = tensors_of(checkpoint)
    allowed = (".estimator.runs[i].state.", ".estimator.runs[i].perturbations.",
               ".estimator.runs[i].draw.generator_state", ".generator")
    for where in held:
        assert re.sub(r"\[\d+\]", "[i]", where).startswith(allowed), where
    assert (tmp_path / "checkpoint.pt").stat().st_size < sum(value.nbytes for value in held.values()) + 20_000


def test_stagger_spreads_the_runs_over_the_horizon(compose_config):
    cfg = compose_config("train", ["task=hpo", "task.horizon=8", "trainer.device=cpu", "task.batch_size=16"])
    task = build_task(cfg, torch.device("cpu"))
    estimator = online_estimator(compose_config, "tbptt", stagger=True)()
    generator = torch.Generator().manual_seed(0)
    meta_params = task.init_meta_params(generator)
    estimator.estimate(sample(task, generator, 4), meta_params, generator)
    assert [run.step for run in estimator.runs.runs] == [3, 5, 7, 8]  # from 0, 2, 4, 6, windows of 3
    assert [run.part for run in estimator.runs.runs] == [0, 1, 2, 3]


@pytest.mark.parametrize("overrides, expected", [
    (["task=influence", "trainer.meta_batch=1"], "this task's problem is one run"),
    (["task=hpo", "trainer.meta_batch=1"], "use trainer.meta_batch of 2 or more"),
])
def test_stagger_needs_separate_runs(compose_config, overrides, expected):
    cfg = compose_config("train", [*overrides, "trainer.device=cpu"])
    task = build_task(cfg, torch.device("cpu"))
    estimator = online_estimator(compose_config, "tbptt", stagger=True, truncation=1)()
    generator = torch.Generator().manual_seed(0)
    meta_params = task.init_meta_params(generator)
    with pytest.raises(UserError, match=expected):
        estimator.estimate(sample(task, generator, cfg.trainer.meta_batch), meta_params, generator)


def test_stagger_needs_online(compose_config):
    with pytest.raises(UserError, match="set estimator.online=true too"):
        build(compose_config("train", ["estimator=pes", "estimator.stagger=true"]).estimator)


class Touch:
    """Unpickling this creates a file: what a crafted checkpoint could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.path),)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("runs")
    result = run_in_process(["train", "task=learned_opt", "estimator=tbptt", "estimator.truncation=2", "task.horizon=2",
                             "task.test_horizon=2", "task.test_seeds=1", "task.adam_lrs=[0.1]", "task.sgd_lrs=[0.1]",
                             "trainer.meta_steps=1", "trainer.meta_batch=1", "trainer.progress=false", "logger=none",
                             "hydra.run.dir=run"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "run"


@pytest.fixture
def finished_run(trained, tmp_path):
    """A copy of a finished learned_opt run, for one test to damage."""
    return pathlib.Path(shutil.copytree(trained, tmp_path / "run"))


def crafted(run_dir: pathlib.Path, marker: pathlib.Path) -> None:
    """The run's own checkpoint with one value replaced by a code-running object."""
    checkpoint = load_checkpoint(run_dir)
    checkpoint["wandb_id"] = Touch(str(marker))
    torch.save(checkpoint, run_dir / "checkpoint.pt")


@pytest.mark.parametrize("command", ["resume", "eval"])
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(finished_run, tmp_path, command):
    marker = tmp_path / "ran"
    crafted(finished_run, marker)
    args = ["train", f"resume={finished_run}", "trainer.meta_steps=2"] if command == "resume" else [
        "eval", f"run={finished_run}"]
    result = run_in_process(args, tmp_path)
    assert_user_error(result, "checkpoint.pt is refused", "do not use this file")
    assert not marker.exists()


def test_learned_optimizer_from_a_crafted_run_is_refused(finished_run, tmp_path):
    from metaopt_cli.tasks.lopt.optimizer import LearnedOptimizer

    marker = tmp_path / "ran"
    crafted(finished_run, marker)
    with pytest.raises(UserError, match="checkpoint.pt is refused"):
        LearnedOptimizer.from_run([torch.zeros(2, requires_grad=True)], finished_run)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, damage):
    save_checkpoint(tmp_path, {"step": 3, "meta_params": {"x": torch.ones(1000)}})
    path = tmp_path / "checkpoint.pt"
    whole = path.read_bytes()
    path.write_bytes({"truncated": whole[: len(whole) // 2], "garbage": b"not a checkpoint", "empty": b""}[damage])
    with pytest.raises(UserError, match="checkpoint.pt is truncated, corrupt or not a metaopt checkpoint") as error:
        load_checkpoint(tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_resume_and_eval_of_a_truncated_checkpoint_end_in_one_error_line(finished_run, tmp_path):
    path = finished_run / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:1000])
    for args in (["train", f"resume={finished_run}"], ["eval", f"run={finished_run}"]):
        assert_user_error(run_in_process(args, tmp_path),
                          "checkpoint.pt is truncated, corrupt or not a metaopt checkpoint")

def test_periodic_evaluation_uses_validate_and_the_summary_holds_both(compose_config, tmp_path, monkeypatch):
    """Model selection during training looks at validation data only (task.validate, where a
    task has it); the final summary shows it beside the test-split evaluation."""
    from metaopt_cli.tasks.influence import InfluenceBalancing
    from metaopt_cli.trainer import train

    validate = lambda self, meta_params, generator: {"val_score": 0.5}  # noqa: E731
    monkeypatch.setattr(InfluenceBalancing, "validate", validate, raising=False)
    choices = {"task": "influence", "estimator": "tbptt", "backbone": "mlp", "data": "digits", "logger": "none"}
    cfg = compose_config("train", ["task=influence", "estimator=tbptt", "estimator.truncation=2",
                                   "estimator.online=true", "logger=none", "trainer.meta_steps=4",
                                   "trainer.eval_every=2", "trainer.meta_batch=1", "trainer.progress=false",
                                   "trainer.device=cpu"])
    summary = train(cfg, choices, tmp_path, "test", "test")
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = {record["step"]: record for record in map(json.loads, lines)}
    assert records[2]["val_score"] == 0.5 and "steady_state_loss" not in records[2]
    assert summary["val_score"] == 0.5 and "steady_state_loss" in summary


def test_the_final_validation_is_not_redone_where_the_evaluation_gave_it(compose_config, tmp_path, monkeypatch):
    """A task whose `evaluate` reports validate's figures too (evaluate_validates: nas, gradient
    matching) is validated during training only: the final evaluation is not paid twice."""
    from metaopt_cli.tasks.influence import InfluenceBalancing
    from metaopt_cli.trainer import train

    steps = []
    monkeypatch.setattr(InfluenceBalancing, "validate", lambda self, meta_params, generator: steps.append(1) or {},
                        raising=False)
    monkeypatch.setattr(InfluenceBalancing, "evaluate_validates", True, raising=False)
    choices = {"task": "influence", "estimator": "tbptt", "backbone": "mlp", "data": "digits", "logger": "none"}
    cfg = compose_config("train", ["task=influence", "estimator=tbptt", "estimator.truncation=2", "logger=none",
                                   "trainer.meta_steps=4", "trainer.eval_every=2", "trainer.meta_batch=1",
                                   "trainer.progress=false", "trainer.device=cpu"])
    summary = train(cfg, choices, tmp_path, "test", "test")
    assert len(steps) == 1 and "steady_state_loss" in summary  # at meta-step 2; none at the end
