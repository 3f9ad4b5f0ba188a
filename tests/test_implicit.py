"""Implicit differentiation says when its assumptions fail: the inner gradient norm at the end of
the inner loop and the linear solver's relative residual as metrics, one warning line the first
time either is large, and non-finite settings refused."""
import json
import logging
import math

import pytest
import torch

from metaopt_cli.build import build, first_problem
from metaopt_cli.errors import UserError
from metaopt_cli.estimators.implicit import Implicit

from conftest import assert_user_error, read_json, run_in_process

IMAML = ["task=maml", "task.proximal=1.0", "estimator=implicit", "trainer.meta_batch=2", "trainer.device=cpu",
         "trainer.dtype=float64"]
WARNING = "implicit differentiation assumes"


@pytest.fixture(autouse=True)
def _float32_after():
    """build_task sets the process's default dtype (one process is one run); tests share a process."""
    yield
    torch.set_default_dtype(torch.float32)


def estimates(compose_config, overrides: list[str], times: int, caplog) -> tuple[list[dict], list[str]]:
    """`times` estimates of one composed problem by one estimator: their metrics as floats, and
    the warnings it logged."""
    cfg = compose_config("train", [*IMAML, *overrides])
    _, meta_params, problem, generator = first_problem(cfg, torch.device("cpu"))
    estimator = build(cfg.estimator)
    with caplog.at_level(logging.WARNING, logger="metaopt_cli.estimators.implicit"):
        metrics = [{k: float(v) for k, v in estimator.estimate(problem, meta_params, generator)[1].items()}
                   for _ in range(times)]
    return metrics, [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_a_short_relu_inner_loop_warns_once(compose_config, caplog):
    """iMAML on digits with a ReLU MLP and two inner steps: far from stationary, and CG on an
    indefinite Hessian leaves a large residual; one warning for two meta-steps, naming the knobs."""
    metrics, warnings = estimates(compose_config, ["backbone.hidden=[16]", "task.horizon=2"], 2, caplog)
    print(f"short ReLU inner loop: inner_grad_norm {metrics[0]['inner_grad_norm']:.3g}, "
          f"solver_residual {metrics[0]['solver_residual']:.3g}")
    assert metrics[0]["inner_grad_norm"] > 0.5
    assert len(warnings) == 1
    assert all(knob in warnings[0] for knob in ("task.horizon", "task.proximal", "estimator.iterations"))


def test_a_converged_quadratic_inner_loop_is_silent(compose_config, caplog):
    """iMAML with a linear model on sinusoid regression: the support objective is quadratic, 200
    inner steps reach its optimum and CG solves the 4-dimensional system exactly."""
    metrics, warnings = estimates(compose_config, ["data=sinusoid", "backbone.hidden=[]", "task.horizon=200",
                                                   "task.inner_lr=0.05"], 1, caplog)
    print(f"converged quadratic: inner_grad_norm {metrics[0]['inner_grad_norm']:.3g}, "
          f"solver_residual {metrics[0]['solver_residual']:.3g}")
    assert metrics[0]["inner_grad_norm"] < 1e-10 and metrics[0]["solver_residual"] < 1e-10
    assert warnings == []


def test_a_run_logs_the_diagnostics_and_warns_once(tmp_path):
    result = run_in_process(["train", *IMAML, "backbone.hidden=[16]", "task.horizon=2", "trainer.meta_steps=3",
                             "task.test_episodes=4", "task.test_horizon=2", "logger=none", "trainer.progress=false",
                             "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (result.stdout + result.stderr).count(WARNING) == 1
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert all({"inner_grad_norm", "solver_residual"} <= set(json.loads(line)) for line in lines)
    assert read_json(tmp_path / "run" / "summary.json")["steps"] == 3


@pytest.mark.parametrize(("damping", "neumann_lr"), [(math.nan, 0.1), (math.inf, 0.1), (-1.0, 0.1), (0.0, math.nan),
                                                     (0.0, 0.0)])
def test_non_finite_or_negative_settings_are_refused(damping, neumann_lr):
    with pytest.raises(UserError, match="estimator.damping must be a finite number"):
        Implicit("cg", 20, damping, neumann_lr)


def test_nan_damping_is_one_error_line(tmp_path):
    assert_user_error(run_in_process(["train", *IMAML, "estimator.damping=nan", "trainer.meta_steps=1", "logger=none"],
                                     tmp_path), "estimator.damping", "nan")
