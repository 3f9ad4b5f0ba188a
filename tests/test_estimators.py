"""The estimators against exact meta-gradients, and their memory as the horizon grows."""
import pytest
import torch

from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.tbptt import TBPTT
from metaopt_cli.memory import measure_peak

from problems import QuadraticProblem


def theta(dim=5):
    return {"theta": torch.linspace(-1, 1, dim, dtype=torch.float64)}


def estimate(estimator, problem, meta_params, seed=0):
    return estimator.estimate(problem, meta_params, torch.Generator().manual_seed(seed))[0]


@pytest.mark.parametrize("objective", ["final", "sum"])
@pytest.mark.parametrize(
    "estimator",
    [Backprop(checkpoint=False), Backprop(checkpoint=True), TBPTT(truncation=12, random_window=False)],
    ids=["backprop", "backprop-checkpointed", "tbptt-T=K"],
)
def test_exact_estimators_match_the_closed_form(estimator, objective):
    problem = QuadraticProblem.random(horizon=12, objective=objective)
    grad = estimate(estimator, problem, theta())["theta"]
    torch.testing.assert_close(grad, problem.exact_gradient(theta()["theta"]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("horizon", [1, 7, 16, 30])
def test_checkpointed_backprop_equals_backprop_at_any_horizon(horizon):
    problem = QuadraticProblem.random(horizon=horizon, objective="sum")
    expected = estimate(Backprop(False), problem, theta())["theta"]
    torch.testing.assert_close(estimate(Backprop(True), problem, theta())["theta"], expected, rtol=1e-12, atol=1e-12)


def test_tbptt_with_T_equal_K_equals_backprop_on_distillation(distill_problem):
    problem, meta_params = distill_problem
    exact = estimate(Backprop(False), problem, meta_params)
    truncated = estimate(TBPTT(problem.horizon, False), problem, meta_params)
    for name in exact:
        torch.testing.assert_close(truncated[name], exact[name], rtol=1e-10, atol=1e-12)


def test_backprop_on_distillation_matches_finite_differences(distill_problem):
    problem, meta_params = distill_problem
    grad = estimate(Backprop(False), problem, meta_params)
    direction = {name: torch.randn_like(value) for name, value in meta_params.items()}
    eps = 1e-6

    def meta_loss(sign):
        moved = {name: value + sign * eps * direction[name] for name, value in meta_params.items()}
        state = problem.init(moved)
        for t in range(problem.horizon):
            state = problem.step(moved, state, t)
        return problem.meta_loss(moved, state)

    numeric = (meta_loss(1) - meta_loss(-1)) / (2 * eps)
    analytic = sum((grad[name] * direction[name]).sum() for name in grad)
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_short_truncation_is_biased_but_keeps_the_last_window():
    """T < K drops the path through the early steps: the estimate differs from the exact
    gradient, and equals backprop run from the state T steps before the end."""
    problem = QuadraticProblem.random(horizon=12)
    truncated = estimate(TBPTT(4, False), problem, theta())["theta"]
    assert not torch.allclose(truncated, problem.exact_gradient(theta()["theta"]))
    # From the (θ-dependent but detached) state at step 8, four more steps.
    state = problem.init(theta())
    for t in range(8):
        state = problem.step(theta(), state, t)
    tail = QuadraticProblem(problem.A, state["w"], problem.target, problem.lr, 4)
    torch.testing.assert_close(truncated, tail.exact_gradient(theta()["theta"]))


def test_random_window_ends_inside_the_horizon_and_matches_backprop_there():
    problem = QuadraticProblem.random(horizon=10)
    _, metrics = TBPTT(10, True).estimate(problem, theta(), torch.Generator().manual_seed(0))
    assert metrics["window_end"] == 10  # T = K leaves one place for the window
    ends = {TBPTT(3, True).estimate(problem, theta(), torch.Generator().manual_seed(s))[1]["window_end"] for s in range(40)}
    assert ends <= set(range(3, 11)) and len(ends) > 3


def test_memory_grows_with_the_horizon_for_backprop_only(distill_problem_at):
    peaks = {}
    for horizon in (10, 40):
        problem, meta_params = distill_problem_at(horizon)
        for name, estimator in [("backprop", Backprop(False)), ("checkpointed", Backprop(True)), ("tbptt", TBPTT(5, False))]:
            _, peaks[name, horizon] = measure_peak(lambda: estimate(estimator, problem, meta_params), torch.device("cpu"))
    assert peaks["backprop", 40] > 3 * peaks["backprop", 10]
    assert peaks["checkpointed", 40] < 0.5 * peaks["backprop", 40]
    assert peaks["tbptt", 40] == peaks["tbptt", 10]
