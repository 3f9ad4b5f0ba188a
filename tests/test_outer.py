"""trainer.outer_optimizer and trainer.outer_scheduler: torch classes chosen by config, the
schedule stepped once per meta-step and logged, the names of earlier versions still read."""
import io
import json
import math

import pytest
import torch
import yaml
from hydra.utils import get_class

from metaopt_cli.config.store import options
from metaopt_cli.errors import UserError
from metaopt_cli.outer import build_outer, restore_outer
from metaopt_cli.run_config import compose_run_config

from conftest import TINY, assert_user_error, run_in_process, train_whole_and_resumed


def logged_lrs(run_dir) -> list[float]:
    return [json.loads(line)["outer_lr"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_cosine_schedule_takes_the_logged_outer_lr_down_the_cosine(tmp_path):
    result = run_in_process(["train", *TINY, "trainer.meta_steps=6", "trainer.outer_lr=0.02",
                             "trainer.outer_scheduler=cosine", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # Step s (from 1) takes the lr of the cosine at s - 1 of T_max = trainer.meta_steps.
    expected = [0.02 * (1 + math.cos(math.pi * step / 6)) / 2 for step in range(6)]
    assert logged_lrs(tmp_path / "run") == pytest.approx(expected, rel=1e-9)


def test_the_default_schedule_keeps_the_outer_lr(tmp_path):
    result = run_in_process(["train", *TINY, "trainer.meta_steps=3", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert logged_lrs(tmp_path / "run") == [0.01] * 3


def test_a_resumed_step_schedule_equals_the_uninterrupted_one(tmp_path):
    from test_resume import assert_same_run

    overrides = [*TINY, "trainer.outer_optimizer=sgd", "trainer.outer_scheduler=step",
                 "trainer.outer_scheduler.step_size=2", "trainer.checkpoint_every=1000"]
    whole, parts = train_whole_and_resumed(tmp_path, overrides, stop_at=3, steps=6)
    assert_same_run(whole, parts)
    assert logged_lrs(parts) == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]


@pytest.mark.parametrize(("override", "presets"), [("trainer.outer_optimizer=rmsprop", "adam, adamw, sgd"),
                                                   ("trainer.outer_scheduler=linear", "constant, cosine, multistep, step")])
def test_an_unknown_preset_is_one_line_listing_the_presets(tmp_path, override, presets):
    result = run_in_process(["train", *TINY, override], tmp_path)
    assert_user_error(result, f"'{override.partition('=')[2]}': choose one of {presets}")


def test_a_target_outside_torch_optim_is_refused(tmp_path):
    result = run_in_process(["train", *TINY, "trainer.outer_optimizer._target_=os.system"], tmp_path)
    assert_user_error(result, "trainer.outer_optimizer._target_=os.system is not one of torch.optim's")


@pytest.mark.parametrize("optimizer", options("trainer/outer_optimizer"))
@pytest.mark.parametrize("scheduler", options("trainer/outer_scheduler"))
def test_every_preset_builds_steps_and_checkpoints_as_plain_data(compose_config, optimizer, scheduler):
    cfg = compose_config("train", [f"trainer/outer_optimizer={optimizer}", f"trainer/outer_scheduler={scheduler}"])
    theta = torch.ones(3, requires_grad=True)
    built, schedule = build_outer(cfg.trainer, [theta])
    assert type(built) is get_class(cfg.trainer.outer_optimizer._target_)
    for _ in range(2):
        theta.grad = torch.ones(3)
        built.step()
        schedule.step()
    buffer = io.BytesIO()
    torch.save({"optimizer": built.state_dict(), "scheduler": schedule.state_dict()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # as load_checkpoint reads it
    assert loaded["scheduler"]["last_epoch"] == 2


def an_earlier_run(tmp_path, overrides: list[str]):
    """A run directory as an earlier metaopt left it: no choice recorded for the outer groups."""
    hydra_dir = tmp_path / "old" / ".hydra"
    hydra_dir.mkdir(parents=True)
    choices = {"task": "distill", "estimator": "tbptt", "backbone": "mlp", "data": "digits", "logger": "none"}
    (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return tmp_path / "old"


def test_an_earlier_runs_outer_optimizer_string_selects_the_preset(tmp_path):
    cfg = compose_run_config(an_earlier_run(tmp_path, ["trainer.outer_optimizer=sgd", "trainer.outer_lr=0.1"]))
    assert cfg.trainer.outer_optimizer._target_ == "torch.optim.SGD"
    assert cfg.trainer.outer_scheduler._target_ == "torch.optim.lr_scheduler.ConstantLR"
    assert cfg.trainer.outer_lr == 0.1
    default = compose_run_config(an_earlier_run(tmp_path / "b", []))
    assert default.trainer.outer_optimizer._target_ == "torch.optim.Adam"


def test_a_recorded_target_may_name_torchs_classes_only(tmp_path):
    cfg = compose_run_config(an_earlier_run(tmp_path, ["trainer.outer_optimizer._target_=torch.optim.NAdam"]))
    assert cfg.trainer.outer_optimizer._target_ == "torch.optim.NAdam"
    with pytest.raises(UserError, match="which a run may not set"):
        compose_run_config(an_earlier_run(tmp_path / "b", ["trainer.outer_optimizer._target_=os.system"]))


def test_resuming_takes_the_outer_lr_and_knobs_given_now(compose_config):
    """The lr asked for at resume wins (lowering it after a divergence must take effect), for a
    checkpoint with a schedule and one written before schedules existed; so do the optimizer's knobs."""
    def built(outer_lr, momentum):
        cfg = compose_config("train", ["trainer/outer_optimizer=sgd", f"trainer.outer_optimizer.momentum={momentum}",
                                       "trainer/outer_scheduler=step", "trainer.outer_scheduler.step_size=2",
                                       f"trainer.outer_lr={outer_lr}"])
        return cfg.trainer, *build_outer(cfg.trainer, [torch.ones(1, requires_grad=True)])

    _, optimizer, scheduler = built(0.01, momentum=0.0)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    saved_optimizer, saved_schedule = optimizer.state_dict(), scheduler.state_dict()
    for saved, expected in ((saved_schedule, [0.0005, 0.00025]), (None, [0.001, 0.001])):
        trainer, optimizer, scheduler = built(0.001, momentum=0.5)
        optimizer.load_state_dict(saved_optimizer)
        restore_outer(optimizer, scheduler, saved, trainer)
        assert optimizer.param_groups[0]["momentum"] == 0.5
        lrs = []
        for _ in range(2):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert lrs == pytest.approx(expected)


def test_list_shows_the_outer_groups(tmp_path):
    result = run_in_process(["list"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "trainer/outer_optimizer adam, adamw, sgd" in result.stdout
    assert "trainer/outer_scheduler constant, cosine, multistep, step" in result.stdout
