"""task=protonet's heads (tasks/fewshot/heads/): ridge regression against its closed form and an
explicit inverse; the SVM's QP solution against scipy's SLSQP and its implicit meta-gradient against
finite differences and against backprop through the solver unrolled to convergence (float64)."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from torch.func import grad, vmap

from metaopt_cli.build import first_problem
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.outer import build_outer, outer_lr
from metaopt_cli.tasks.fewshot.heads.crammer_singer import (active_set, projected_gradient, simplex_projection, solve,
                                                             solve_dual)
from metaopt_cli.tasks.fewshot.heads.ridge import RidgeHead, ridge_weights
from metaopt_cli.tasks.fewshot.heads.svm import SVMHead

from conftest import assert_user_error, read_json, run_in_process

F64 = torch.float64


def episode(n_per_class: int, ways: int, dim: int, queries: int, seed: int = 0):
    """Support embeddings [n, dim] with their labels (one-hot) and query embeddings, float64."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(ways).repeat(n_per_class)
    support = torch.randn(len(labels), dim, generator=generator, dtype=F64) + 2 * F.one_hot(labels, dim).to(F64)
    query = torch.randn(queries, dim, generator=generator, dtype=F64)
    return support, F.one_hot(labels, ways).to(F64), query


@pytest.mark.parametrize(("n_per_class", "dim"), [(1, 16), (6, 4)], ids=["dual", "primal"])
def test_ridge_is_the_closed_form(n_per_class, dim):
    """Whichever form runs (the dual where the embedding is wider than the support set), W is
    (XᵀX + λI)⁻¹XᵀY and Xᵀ(XXᵀ + λI)⁻¹Y, written with explicit inverses."""
    x, y, _ = episode(n_per_class, 3, dim, 1)
    lam = 0.7
    primal = torch.linalg.inv(x.T @ x + lam * torch.eye(dim, dtype=F64)) @ x.T @ y
    dual = x.T @ torch.linalg.inv(x @ x.T + lam * torch.eye(len(x), dtype=F64)) @ y
    weights = ridge_weights(x, y, lam)
    print(f"max |W − primal| {(weights - primal).abs().max():.2g}, |W − dual| {(weights - dual).abs().max():.2g}")
    assert torch.allclose(weights, primal, atol=1e-12) and torch.allclose(weights, dual, atol=1e-12)


def test_ridge_meta_gradient_is_autograd_through_an_explicit_inverse():
    """The head's gradient (embeddings, learned scale and λ) equals autograd through
    s · Q Xᵀ (XXᵀ + λI)⁻¹ Y with torch.linalg.inv."""
    support, one_hot, query = episode(1, 5, 16, 7)
    head = RidgeHead(ridge_lambda=2.0, learn_ridge_lambda=True, head_scale=3.0)
    params = {name: value.to(F64).requires_grad_() for name, value in head.init_params().items()}
    support, query = support.requires_grad_(), query.requires_grad_()
    targets = torch.randint(5, (7,), generator=torch.Generator().manual_seed(1))
    inputs = [support, query, *params.values()]

    explicit_inverse = torch.linalg.inv(support @ support.T + params["log_lambda"].exp() * torch.eye(5, dtype=F64))
    explicit = params["log_scale"].exp() * query @ support.T @ explicit_inverse @ one_hot
    expected = torch.autograd.grad(F.cross_entropy(explicit, targets), inputs)
    got = torch.autograd.grad(F.cross_entropy(head.logits(support, one_hot, query, params), targets), inputs)
    for g, e in zip(got, expected):
        assert torch.allclose(g, e, atol=1e-12), (g - e).abs().max()


def test_simplex_projection_is_the_nearest_point():
    """Against the projection found by SLSQP, for rows with entries inside and outside the simplex."""
    v = torch.tensor([[0.3, -0.2, 0.05, 0.4], [2.0, 2.0, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=F64)
    projected = simplex_projection(v, 0.5)
    for row, got in zip(v.numpy(), projected.numpy()):
        result = minimize(lambda w, row=row: ((w - row) ** 2).sum(), np.full(4, 0.125), method="SLSQP",
                          constraints=[{"type": "eq", "fun": lambda w: w.sum() - 0.5}], bounds=[(0, None)] * 4,
                          options={"ftol": 1e-15, "maxiter": 500})
        assert np.abs(got - result.x).max() < 1e-7, (got, result.x)


def dual_objective(alpha: np.ndarray, kernel: np.ndarray, labels: np.ndarray) -> float:
    return 0.5 * (alpha * (kernel @ alpha)).sum() + 0.5 * (alpha**2).sum() - (labels * alpha).sum()


@pytest.mark.parametrize("c", [0.1, 10.0], ids=["bounds-active", "bounds-loose"])
def test_svm_solver_matches_an_independent_qp_solve(c):
    """MetaOptNet's Crammer–Singer dual on a tiny episode, solved by scipy's SLSQP with the
    constraints written out: the same α* (and so the same objective); α* is feasible."""
    support, labels, _ = episode(2, 3, 8, 1)
    kernel = support @ support.T
    alpha = projected_gradient(kernel, labels, c, 3000)
    n, k = labels.shape
    y = labels.numpy()
    result = minimize(lambda a: dual_objective(a.reshape(n, k), kernel.numpy(), y), np.zeros(n * k), method="SLSQP",
                      constraints=[{"type": "eq", "fun": lambda a: a.reshape(n, k).sum(1)},
                                   {"type": "ineq", "fun": lambda a: (c * y - a.reshape(n, k)).ravel()}],
                      options={"ftol": 1e-15, "maxiter": 1000})
    difference = np.abs(alpha.numpy() - result.x.reshape(n, k)).max()
    print(f"C={c}: max |α − SLSQP's| {difference:.2g}")
    assert result.success and difference < 1e-6
    assert (alpha <= c * labels + 1e-15).all() and alpha.sum(1).abs().max() < 1e-12
    # With C = 0.1 some examples' true-class bounds hold with equality (margin violators); with C = 10 none.
    at_bound = ((alpha - c * labels).abs() < 1e-12) & (labels == 1)
    assert (c < 1) == bool(at_bound.any())


@pytest.mark.parametrize(("scale", "shift"), [(1, 5), (2, 8)])
def test_svm_solver_converges_in_its_default_iterations_on_ill_conditioned_kernels(scale, shift, compose_config):
    """Meta-training grows the embeddings, and ReLU features share a large mean: K's condition number
    runs into the tens of thousands, where projected gradient needs tens of thousands of steps. The
    default task.svm_iterations reach the optimum of a 40,000-step projected-gradient run, to round-off
    in float64 and to float32's precision."""
    default = compose_config("train", ["task=protonet"]).task.svm_iterations
    support, labels, _ = episode(5, 5, 32, 1, seed=5)
    kernel = (scale * support + shift) @ (scale * support + shift).T
    reference = projected_gradient(kernel, labels, 0.1, 40000)
    assert (projected_gradient(kernel, labels, 0.1, 1000) - reference).abs().max() > 1e-6  # the problem is hard
    for dtype, tolerance in ((F64, 1e-12), (torch.float32, 1e-5)):
        alpha = solve(kernel.to(dtype), labels.to(dtype), 0.1, default).to(F64)
        print(f"{dtype}: max |α − reference| {(alpha - reference).abs().max():.2g}")
        assert (alpha - reference).abs().max() < tolerance


def svm_loss(support: torch.Tensor, labels: torch.Tensor, query: torch.Tensor, weights: torch.Tensor, alpha_of):
    """A scalar of the SVM's query scores: ⟨weights, Q Xᵀ α*(XXᵀ)⟩."""
    return ((query @ support.T) @ alpha_of(support @ support.T, labels) * weights).sum()


@pytest.mark.parametrize("c", [0.1, 10.0], ids=["bounds-active", "bounds-loose"])
def test_svm_implicit_meta_gradient_is_finite_differences_and_unrolling(c):
    """d/d(support embeddings) of a function of the query scores: implicit differentiation at the
    solver's solution against central finite differences of the converged solution, and against
    backprop through 600 unrolled projected-gradient steps (an independent solver, converged to
    round-off here; the interior point's step lengths are not differentiable)."""
    support, labels, query = episode(2, 3, 6, 4, seed=2)
    weights = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    implicit = lambda kernel, y: solve_dual(kernel, y, c, 300)  # noqa: E731
    unrolled = lambda kernel, y: projected_gradient(kernel, y, c, 600)  # noqa: E731
    x = support.clone().requires_grad_()
    got = torch.autograd.grad(svm_loss(x, labels, query, weights, implicit), x)[0]
    through_steps = torch.autograd.grad(svm_loss(x, labels, query, weights, unrolled), x)[0]
    step = 1e-6
    finite = torch.zeros_like(support)
    with torch.no_grad():
        for index in np.ndindex(*support.shape):
            bump = torch.zeros_like(support)
            bump[index] = step
            finite[index] = (svm_loss(support + bump, labels, query, weights, unrolled)
                             - svm_loss(support - bump, labels, query, weights, unrolled)) / (2 * step)
    scale = got.abs().max()
    print(f"C={c}: max |implicit − FD| {(got - finite).abs().max():.2g}, "
          f"|implicit − unrolled| {(got - through_steps).abs().max():.2g}, max |grad| {scale:.2g}")
    assert (got - finite).abs().max() < 1e-7 * max(1.0, scale)
    assert (got - through_steps).abs().max() < 1e-9 * max(1.0, scale)


def test_svm_active_set_projects_onto_the_tangent_space():
    """J_i is an orthogonal projector whose range sums to zero and vanishes off w's support."""
    support, labels, _ = episode(2, 3, 8, 1)
    alpha = projected_gradient(support @ support.T, labels, 0.1, 500)
    jacobian = active_set(alpha, labels, 0.1)
    assert torch.allclose(jacobian @ jacobian, jacobian) and torch.allclose(jacobian, jacobian.mT)
    assert jacobian.sum(-1).abs().max() < 1e-12
    off_support = (0.1 * labels - alpha) == 0
    assert off_support.any() and (jacobian[off_support] == 0).all()


def test_svm_head_runs_under_vmap():
    """The task runs the head under vmap over episodes (and ES under a second one): the
    meta-gradient of vmapped episodes is each episode's own."""
    head = SVMHead(svm_c=0.1, svm_iterations=200, head_scale=1.0)
    params = {name: value.to(F64) for name, value in head.init_params().items()}
    episodes = [episode(2, 3, 6, 4, seed=seed) for seed in range(3)]
    supports, labels, queries = (torch.stack(parts) for parts in zip(*episodes))

    def loss(support, one_hot, query):
        return head.logits(support, one_hot, query, params).logsumexp(-1).sum()

    batched = vmap(grad(loss))(supports, labels, queries)
    for got, (support, one_hot, query) in zip(batched, episodes):
        assert torch.allclose(got, grad(loss)(support, one_hot, query), atol=1e-13)


def test_svm_head_under_torch_compile_keeps_the_implicit_gradient():
    """trainer.compile=compile: dynamo would trace the implicit autograd.Function under vmap as its
    forward's ops (non-finite gradients); the solver is kept out of the graph, so the compiled
    meta-gradient is the eager one."""
    head = SVMHead(svm_c=0.1, svm_iterations=15, head_scale=1.0)
    params = head.init_params()
    supports, labels, queries = (torch.stack(parts).float() for parts in zip(*[episode(1, 5, 16, 3, seed=seed)
                                                                              for seed in range(2)]))

    def loss(support):
        return vmap(lambda s, y, q: head.logits(s, y, q, params))(support, labels, queries).logsumexp(-1).sum()

    eager = grad(loss)(supports)
    compiled = torch.autograd.grad(torch.compile(loss, backend="eager")(supports.requires_grad_()), supports)[0]
    assert torch.isfinite(eager).all() and torch.allclose(compiled, eager)


@pytest.fixture
def float32_after():
    """build_task sets the process's default dtype (one process is one run); tests share a process."""
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("head", ["ridge", "svm"])
def test_task_meta_gradient_is_finite_differences(head, compose_config, float32_after):
    """The whole meta-gradient (backbone and head parameters) that estimator=backprop returns, along a
    random direction of θ, against central finite differences of the meta-loss, in float64."""
    cfg = compose_config("train", ["task=protonet", f"task.head={head}", "task.svm_iterations=400",
                                   "backbone.hidden=[8]", "trainer.dtype=float64", "task.ways=3", "task.shots=2",
                                   "task.queries=2", "trainer.meta_batch=2", "trainer.device=cpu"])
    _, meta_params, problem, generator = first_problem(cfg, torch.device("cpu"))
    assert {"head.log_scale"} <= set(meta_params)
    grads = Backprop(False).estimate(problem, meta_params, generator)[0]
    direction = {name: torch.randn(value.shape, generator=torch.Generator().manual_seed(4), dtype=F64)
                 for name, value in meta_params.items()}
    step = 1e-6

    def loss_at(sign: float) -> float:
        moved = {name: value + sign * step * direction[name] for name, value in meta_params.items()}
        with torch.no_grad():
            return problem.meta_loss(moved, {}).item()

    finite = (loss_at(1) - loss_at(-1)) / (2 * step)
    exact = sum((grads[name] * direction[name]).sum().item() for name in grads)
    print(f"head={head}: directional derivative {exact:.10g}, finite differences {finite:.10g}")
    assert math.isclose(exact, finite, rel_tol=1e-6, abs_tol=1e-9)


ESTIMATOR_TINY = {"backprop": [], "es": ["estimator.particles=2"], "forward": ["estimator.directions=2"]}


@pytest.mark.parametrize(("head", "estimator", "precision"), [
    ("ridge", "backprop", "fp32"), ("ridge", "es", "fp32"), ("ridge", "forward", "fp32"), ("svm", "backprop", "fp32"),
    ("svm", "es", "fp32"), ("ridge", "backprop", "bf16"), ("svm", "backprop", "bf16"),
])
def test_heads_train_and_evaluate(head, estimator, precision, tmp_path):
    """Every estimator that serves task=protonet runs each head end to end (ridge with λ learned),
    under bfloat16 autocast too; the head's learned values are logged with every record."""
    result = run_in_process(["train", "task=protonet", f"task.head={head}", "task.learn_ridge_lambda=true",
                             f"estimator={estimator}", f"trainer.precision={precision}",
                             *ESTIMATOR_TINY[estimator], "backbone.hidden=[8]",
                             "task.test_episodes=4", "task.queries=2", "trainer.meta_steps=2", "trainer.meta_batch=2",
                             "trainer.progress=false", "logger=none", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert 0 <= summary["test_acc"] <= 1 and summary["test_acc_ci95"] >= 0
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["scale"] > 0 and (("lambda" in record) == (head == "ridge"))


@pytest.mark.parametrize(("overrides", "fragments"), [
    (["task.head=svm", "task.svm_c=0"], ["task.svm_c", "positive", "got 0.0"]),
    (["task.head=svm", "task.svm_c=-1"], ["task.svm_c", "positive"]),
    (["task.head=svm", "estimator=forward"], ["task.head=svm", "set task.head=proto or ridge", "use backprop or es"]),
    (["task.head=ridge", "task.ridge_lambda=0"], ["task.ridge_lambda", "positive"]),
    (["task.head=svm", "task.head_scale=-1"], ["task.head_scale", "positive"]),
    (["task.label_smoothing=1"], ["task.label_smoothing", "[0, 1)"]),
], ids=["svm-c-zero", "svm-c-negative", "svm-forward", "ridge-lambda", "scale", "smoothing"])
def test_bad_head_settings_are_one_error_line(overrides, fragments, tmp_path):
    result = run_in_process(["train", "task=protonet", *overrides, "trainer.meta_steps=1", "trainer.progress=false",
                             "logger=none", "hydra.run.dir=run"], tmp_path)
    assert_user_error(result, *fragments)


@pytest.mark.parametrize(("experiment", "head", "lrs"), [
    ("metaoptnet_svm_miniimagenet_5w1s", "svm", {0: 0.1, 18999: 0.1, 19000: 0.006, 39000: 0.00147, 49000: 0.00036}),
    ("r2d2_cifar_fs_5w1s", "ridge", {0: 0.005, 1999: 0.005, 2000: 0.0025, 4000: 0.00125}),
], ids=["metaoptnet", "r2d2"])
def test_head_experiments_compose(experiment, head, lrs, compose_config):
    """Both published setups compose (their end-to-end runs on stand-in files are test_axes's), with
    their head and the papers' outer lr at the schedule's turns."""
    cfg = compose_config("train", [f"experiment={experiment}"])
    assert cfg.task.head.value == head and cfg.trainer.meta_batch in (1, 8)
    optimizer, scheduler = build_outer(cfg.trainer, [torch.zeros(1, requires_grad=True)])
    for step in range(max(lrs) + 1):
        if step in lrs:
            assert math.isclose(outer_lr(optimizer), lrs[step], rel_tol=0.01), (step, outer_lr(optimizer))
        optimizer.step()
        scheduler.step()
