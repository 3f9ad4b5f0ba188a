"""trainer.dtype: θ, data and inner state in float32 or float64, chosen with one flag."""
import pytest
import torch

from metaopt_cli.build import first_problem
from metaopt_cli.checkpoint import load_checkpoint
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.unroll import total_loss

from conftest import assert_user_error, run_in_process

SINUSOID_TINY = ["task=maml", "data=sinusoid", "estimator=backprop", "backbone.hidden=[8]", "task.horizon=2",
                 "task.test_horizon=2", "task.test_episodes=4", "trainer.meta_steps=2", "trainer.meta_batch=2",
                 "trainer.device=cpu", "trainer.progress=false", "logger=none"]


@pytest.fixture(autouse=True)
def _float32_after():
    """build_task sets the process's default dtype (one process is one run); tests share a process."""
    yield
    torch.set_default_dtype(torch.float32)


def test_a_float64_run_keeps_float64_meta_parameters(tmp_path):
    result = run_in_process(["train", *SINUSOID_TINY, "trainer.dtype=float64", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_checkpoint(tmp_path / "run")
    assert {value.dtype for value in checkpoint["meta_params"].values()} == {torch.float64}


@pytest.mark.parametrize(("data", "dtype"), [("sinusoid", "float64"), ("digits", "float64"), ("digits", "float32")])
def test_theta_data_and_inner_state_take_the_dtype(compose_config, data, dtype):
    cfg = compose_config("train", [*SINUSOID_TINY, f"data={data}", f"trainer.dtype={dtype}", "task.ways=3",
                                   "task.queries=2"])
    _, meta_params, problem, _ = first_problem(cfg, torch.device("cpu"))
    state = problem.step(meta_params, problem.init(meta_params), 0)
    e = problem.episodes
    floats = [*meta_params.values(), *state.values(), e.support_x, e.query_x]
    assert {value.dtype for value in floats} == {getattr(torch, dtype)}


def test_float64_backprop_agrees_with_finite_differences(compose_config):
    """A gradcheck in float64: the derivative of one task's meta-loss along a random direction,
    by backprop and by the five-point stencil (ε = 1e-4: truncation error ~ε⁴, round-off
    ~1e-16/ε), agree to 1e-10."""
    cfg = compose_config("train", [*SINUSOID_TINY, "trainer.dtype=float64", "trainer.meta_batch=1",
                                   "task.inner_lr=0.01"])
    _, meta_params, problem, _ = first_problem(cfg, torch.device("cpu"))
    grads = Backprop(False).estimate(problem, meta_params, torch.Generator())[0]
    direction = {name: torch.randn(value.shape, generator=torch.Generator().manual_seed(1), dtype=value.dtype)
                 for name, value in meta_params.items()}
    eps = 1e-4

    def loss_at(shift: float) -> float:
        with torch.no_grad():
            return total_loss(problem, {n: v + shift * eps * direction[n] for n, v in meta_params.items()}).item()

    stencil = (-loss_at(2) + 8 * loss_at(1) - 8 * loss_at(-1) + loss_at(-2)) / (12 * eps)
    backprop = sum((grads[n] * direction[n]).sum() for n in grads).item()
    print(f"backprop {backprop:.14g}, finite differences {stencil:.14g}, |difference| {abs(backprop - stencil):.3g}")
    assert abs(backprop - stencil) < 1e-10 * max(1.0, abs(backprop))


def test_an_unknown_dtype_is_one_error_line(tmp_path):
    assert_user_error(run_in_process(["train", *SINUSOID_TINY, "trainer.dtype=float16"], tmp_path),
                      "trainer.dtype", "float32, float64")
