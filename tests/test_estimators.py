"""The estimators against exact meta-gradients, and their memory as the horizon grows."""
import pytest
import torch

from metaopt_cli.build import build
from metaopt_cli.commands.list import options
from metaopt_cli.compat import why_unsupported
from metaopt_cli.errors import UserError
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.es import ES
from metaopt_cli.estimators.forward import Forward
from metaopt_cli.estimators.implicit import Implicit
from metaopt_cli.estimators.pes import PES
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
    [Backprop(checkpoint=False), Backprop(checkpoint=True), TBPTT(truncation=12, random_window=False, online=False)],
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
    truncated = estimate(TBPTT(problem.horizon, False, online=False), problem, meta_params)
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
    truncated = estimate(TBPTT(4, False, online=False), problem, theta())["theta"]
    assert not torch.allclose(truncated, problem.exact_gradient(theta()["theta"]))
    # From the (θ-dependent but detached) state at step 8, four more steps.
    state = problem.init(theta())
    for t in range(8):
        state = problem.step(theta(), state, t)
    tail = QuadraticProblem(problem.A, state["w"], problem.target, problem.lr, 4)
    torch.testing.assert_close(truncated, tail.exact_gradient(theta()["theta"]))


def test_random_window_ends_inside_the_horizon_and_matches_backprop_there():
    problem = QuadraticProblem.random(horizon=10)
    _, metrics = TBPTT(10, True, online=False).estimate(problem, theta(), torch.Generator().manual_seed(0))
    assert metrics["window_end"] == 10  # T = K leaves one place for the window
    ends = {TBPTT(3, True, online=False).estimate(problem, theta(), torch.Generator().manual_seed(s))[1]["window_end"] for s in range(40)}
    assert ends <= set(range(3, 11)) and len(ends) > 3


def test_memory_grows_with_the_horizon_for_backprop_only(distill_problem_at):
    peaks = {}
    for horizon in (10, 40):
        problem, meta_params = distill_problem_at(horizon)
        for name, estimator in [("backprop", Backprop(False)), ("checkpointed", Backprop(True)), ("tbptt", TBPTT(5, False, online=False))]:
            _, peaks[name, horizon] = measure_peak(lambda: estimate(estimator, problem, meta_params), torch.device("cpu"))
    assert peaks["backprop", 40] > 3 * peaks["backprop", 10]
    assert peaks["checkpointed", 40] < 0.5 * peaks["backprop", 40]
    assert peaks["tbptt", 40] == peaks["tbptt", 10]


def test_exact_forward_mode_matches_backprop_to_round_off():
    problem = QuadraticProblem.random(horizon=12, objective="sum")
    forward = estimate(Forward("exact", directions=1, max_tangents=100, chunk=2), problem, theta())["theta"]
    torch.testing.assert_close(forward, estimate(Backprop(False), problem, theta())["theta"], rtol=1e-12, atol=1e-13)


def test_exact_forward_mode_matches_backprop_on_distillation(distill_problem_at):
    problem, meta_params = distill_problem_at(3)
    forward = estimate(Forward("exact", directions=1, max_tangents=1000, chunk=256), problem, meta_params)
    exact = estimate(Backprop(False), problem, meta_params)
    for name in exact:
        torch.testing.assert_close(forward[name], exact[name], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("solver", ["cg", "neumann"])
def test_implicit_converges_to_the_closed_form(solver):
    """The error shrinks as the inner loop converges (K) and as the solver does (iterations)."""
    target = QuadraticProblem.random().implicit_gradient(theta()["theta"])

    def error(horizon, iterations):
        problem = QuadraticProblem.random(horizon=horizon)
        implicit = Implicit(solver, iterations, damping=0.0, neumann_lr=0.5)
        return (estimate(implicit, problem, theta())["theta"] - target).norm() / target.norm()

    by_horizon = [error(horizon, 60) for horizon in (5, 20, 120)]
    by_iterations = [error(200, iterations) for iterations in (1, 3, 60)]
    assert by_horizon[0] > by_horizon[1] > by_horizon[2] and by_horizon[2] < 1e-6
    assert by_iterations[0] > by_iterations[1] > by_iterations[2] and by_iterations[2] < 1e-6


# Unbiased stochastic estimators: the mean of many draws matches the exact gradient. On a
# quadratic meta-loss, Gaussian smoothing moves the loss by a constant only, so the smoothed
# objective's gradient is the exact one. Each draw averages 16 perturbations in one vectorised
# pass: 100 draws see as many as 400 draws of 4 would (the same standard error), in a quarter of
# the passes, which is what the time goes on.
STOCHASTIC = {
    "es": ES(particles=16, sigma=0.1, rank_shaping=False),
    "pes": PES(particles=16, sigma=0.1, truncation=4, online=False),
    "forward-random": Forward("random", directions=16, max_tangents=0, chunk=16),
}
DRAWS = 100


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_estimators_are_unbiased(name):
    problem = QuadraticProblem.random(horizon=12, objective="sum")
    draws = torch.stack([estimate(STOCHASTIC[name], problem, theta(), seed)["theta"] for seed in range(DRAWS)])
    mean, stderr = draws.mean(0), draws.std(0) / len(draws) ** 0.5
    exact = problem.exact_gradient(theta()["theta"])
    # Five standard errors per coordinate: a false alarm about once in 10⁵ runs, while a
    # bias of the estimators' size (for example a dropped factor of 2) fails clearly.
    assert ((mean - exact).abs() < 5 * stderr).all(), (mean, exact, stderr)
    assert (stderr < 0.1 * exact.abs().max()).all()


def test_pes_is_unbiased_where_tbptt_is_not():
    problem = QuadraticProblem.random(horizon=12, objective="sum")
    exact = problem.exact_gradient(theta()["theta"])
    truncated = estimate(TBPTT(4, False, online=False), problem, theta())["theta"]
    assert (truncated - exact).norm() > 0.1 * exact.norm()
    draws = torch.stack([estimate(PES(8, 0.1, 4, online=False), problem, theta(), seed)["theta"] for seed in range(200)])
    assert (draws.mean(0) - exact).norm() < 0.5 * (truncated - exact).norm()


def test_rank_shaping_points_downhill():
    problem = QuadraticProblem.random(horizon=12)
    shaped = estimate(ES(particles=64, sigma=0.1, rank_shaping=True), problem, theta())["theta"]
    exact = problem.exact_gradient(theta()["theta"])
    assert torch.nn.functional.cosine_similarity(shaped, exact, dim=0) > 0.8


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ES(particles=0, sigma=0.1, rank_shaping=False), "estimator.particles must be at least 1"),
        (lambda: PES(particles=4, sigma=0.0, truncation=2, online=False), "estimator.sigma must be positive"),
        (lambda: Implicit("lu", 5, 0.0, 0.1), "estimator.solver must be one of cg, neumann"),
        (lambda: Forward("sideways", 4, 10, 4), "estimator.mode must be one of exact, random"),
    ],
)
def test_bad_estimator_values_are_user_errors(make, message):
    with pytest.raises(UserError, match=message):
        make()


def test_exact_forward_refuses_too_many_meta_parameters():
    with pytest.raises(UserError, match="one pass per meta-parameter, 5 here.*estimator.mode=random"):
        estimate(Forward("exact", 1, max_tangents=4, chunk=4), QuadraticProblem.random(), theta())


def test_implicit_needs_an_inner_objective(distill_problem):
    problem, meta_params = distill_problem
    with pytest.raises(UserError, match="no inner objective"):
        estimate(Implicit("cg", 5, 0.0, 0.1), problem, meta_params)


@pytest.mark.parametrize("option", options("estimator"))
def test_every_estimator_option_serves_distillation_or_says_why(compose_config, distill_problem_at, option):
    """Each estimator's own YAML, on the real task: a finite meta-gradient shaped like θ, or
    an entry in the compatibility matrix saying why not."""
    estimator = build(compose_config("train", [f"estimator={option}"]).estimator)
    problem, meta_params = distill_problem_at(10)
    if why_unsupported("distill", option):
        with pytest.raises(UserError):
            estimate(estimator, problem, meta_params)
        return
    grads, metrics = estimator.estimate(problem, meta_params, torch.Generator().manual_seed(0))
    assert {name: g.shape for name, g in grads.items()} == {name: v.shape for name, v in meta_params.items()}
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads.values())
    assert torch.isfinite(torch.as_tensor(metrics["meta_loss"]))
