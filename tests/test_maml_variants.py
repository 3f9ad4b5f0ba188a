"""MAML's variants against meta-gradients computed independently, on linear regression in float64:
its support loss mean((Xp − y)²) is quadratic, with gradient Hp − c, H = 2XᵀX/n and c = 2Xᵀy/n,
so K inner steps, their Jacobians and iMAML's inner optimum have closed forms. Tasks are
sinusoid regression tasks; the model is y = w·x + b (p = [w, b]) unless it needs a body (ANIL)."""
import pytest
import torch

from metaopt_cli.build import build, first_problem
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.tasks.fewshot.maml_problem import LR_PREFIX

LINEAR = ["task=maml", "data=sinusoid", "backbone.hidden=[]", "estimator=backprop", "trainer.dtype=float64",
          "trainer.meta_batch=3", "trainer.device=cpu", "task.horizon=3", "task.inner_lr=0.02"]
ALPHA, HORIZON = 0.02, 3
TOLERANCE = dict(rtol=1e-8, atol=1e-10)


@pytest.fixture(autouse=True)
def _float32_after():
    """build_task sets the process's default dtype (one process is one run); tests share a process."""
    yield
    torch.set_default_dtype(torch.float32)


def linear_regression(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """H and c of mean((Xp − y)²) for the design matrix X = [x, 1]: its gradient is Hp − c."""
    design = torch.cat([x, torch.ones_like(x)], 1)
    return 2 * design.T @ design / len(x), 2 * design.T @ y[:, 0] / len(x)


def tasks(problem):
    """Each task's (H, c) of its support loss and of its query loss."""
    e = problem.episodes
    return [(linear_regression(e.support_x[b], e.support_y[b]), linear_regression(e.query_x[b], e.query_y[b]))
            for b in range(len(e.support_y))]


def as_vector(meta_params, prefix: str = "") -> torch.Tensor:
    return torch.cat([meta_params[f"{prefix}net.1.weight"].flatten(), meta_params[f"{prefix}net.1.bias"]]).detach()


def as_grads(vector: torch.Tensor, prefix: str = "") -> dict:
    return {f"{prefix}net.1.weight": vector[:1].reshape(1, 1), f"{prefix}net.1.bias": vector[1:]}


def composed(compose_config, *overrides: str):
    cfg = compose_config("train", [*LINEAR, *overrides])
    _, meta_params, problem, generator = first_problem(cfg, torch.device("cpu"))
    return cfg, meta_params, problem, generator


def report(name: str, ours: dict, reference: dict) -> None:
    difference = max((ours[n] - reference[n]).abs().max().item() for n in reference)
    print(f"{name}: max |metaopt − independent| {difference:.3g} "
          f"(gradients up to {max(g.abs().max().item() for g in reference.values()):.3g})")
    for n in reference:
        torch.testing.assert_close(ours[n], reference[n], **TOLERANCE)


@pytest.mark.parametrize("first_order", [False, True])
def test_maml_and_fomaml(compose_config, first_order):
    """MAML: dL/dp₀ = ((I − αH)^K)ᵀ ∇L_q(p_K), the inner steps' Jacobian. FOMAML treats the inner
    gradients as constants, so the Jacobian is I: dL/dp₀ = ∇L_q(p_K)."""
    _, meta_params, problem, _ = composed(compose_config, f"task.first_order={first_order}")
    total = 0
    for (h, c), (h_query, c_query) in tasks(problem):
        p = as_vector(meta_params)
        for _ in range(HORIZON):
            p = p - ALPHA * (h @ p - c)
        jacobian = torch.eye(2) if first_order else torch.linalg.matrix_power(torch.eye(2) - ALPHA * h, HORIZON)
        total = total + jacobian.T @ (h_query @ p - c_query)
    ours = Backprop(False).estimate(problem, meta_params, torch.Generator())[0]
    report("FOMAML" if first_order else "MAML", ours, as_grads(total / len(tasks(problem))))


def test_meta_sgd(compose_config):
    """Meta-SGD: p_{k+1} = p_k − a ⊙ (H p_k − c) with learned a = exp(ℓ) per weight. Forward-mode
    recursions for the Jacobians: J_{k+1} = (I − diag(a)H) J_k wrt p₀, and
    G_{k+1} = (I − diag(a)H) G_k − diag(H p_k − c) wrt a; dL/dℓ = a ⊙ G_Kᵀ ∇L_q."""
    _, meta_params, problem, _ = composed(compose_config, "task.learn_inner_lr=true")
    # Different learning rates per weight, so that a wrong index or a shared rate would show.
    meta_params[LR_PREFIX + "net.1.weight"] = meta_params[LR_PREFIX + "net.1.weight"] + 0.3
    meta_params[LR_PREFIX + "net.1.bias"] = meta_params[LR_PREFIX + "net.1.bias"] - 0.5
    a = as_vector(meta_params, LR_PREFIX).exp()
    init_total, lr_total = 0, 0
    for (h, c), (h_query, c_query) in tasks(problem):
        p, to_init, to_lr = as_vector(meta_params), torch.eye(2), torch.zeros(2, 2)
        for _ in range(HORIZON):
            step = torch.eye(2) - torch.diag(a) @ h
            to_lr = step @ to_lr - torch.diag(h @ p - c)
            to_init = step @ to_init
            p = p - a * (h @ p - c)
        query_grad = h_query @ p - c_query
        init_total = init_total + to_init.T @ query_grad
        lr_total = lr_total + a * (to_lr.T @ query_grad)
    count = len(tasks(problem))
    ours = Backprop(False).estimate(problem, meta_params, torch.Generator())[0]
    report("Meta-SGD", ours, {**as_grads(init_total / count), **as_grads(lr_total / count, LR_PREFIX)})


def test_anil(compose_config):
    """ANIL on a ReLU body of 3 units: only the head [w, b] adapts, on the body's features φ(x), so
    its K steps are linear regression on [φ(x), 1]. The reference writes those steps as matrix
    formulas of θ (H q − c, no inner autograd) and differentiates the query loss with autograd."""
    _, meta_params, problem, _ = composed(compose_config, "task.anil=true", "backbone.hidden=[3]")
    assert problem.adapted == ("net.3.weight", "net.3.bias")
    theta = {name: value.detach().requires_grad_() for name, value in meta_params.items()}

    def design(x):
        features = torch.relu(x @ theta["net.1.weight"].T + theta["net.1.bias"])
        return torch.cat([features, torch.ones(len(x), 1)], 1)

    e, losses = problem.episodes, []
    for b in range(len(e.support_y)):
        support, query = design(e.support_x[b]), design(e.query_x[b])
        h, c = 2 * support.T @ support / len(support), 2 * support.T @ e.support_y[b][:, 0] / len(support)
        q = torch.cat([theta["net.3.weight"].flatten(), theta["net.3.bias"]])
        for _ in range(HORIZON):
            q = q - ALPHA * (h @ q - c)
        losses.append(((query @ q - e.query_y[b][:, 0]) ** 2).mean())
    reference = dict(zip(theta, torch.autograd.grad(torch.stack(losses).mean(), list(theta.values()))))
    ours = Backprop(False).estimate(problem, meta_params, torch.Generator())[0]
    report("ANIL", ours, reference)


def test_imaml_is_the_closed_form_of_the_implicit_gradient(compose_config):
    """iMAML: the inner objective L_s(w) + λ/2 ‖w − θ‖² has its optimum at
    w* = (H + λI)⁻¹(c + λθ), and dL/dθ = (I + H/λ)⁻¹ ∇L_q(w*). The inner loop gets 300 steps
    of lr 0.05, enough to reach w* to round-off; CG solves the 2-dimensional systems exactly."""
    proximal = 0.5
    cfg, meta_params, problem, generator = composed(
        compose_config, f"task.proximal={proximal}", "estimator=implicit", "task.horizon=300", "task.inner_lr=0.05")
    total = 0
    for (h, c), (h_query, c_query) in tasks(problem):
        optimum = torch.linalg.solve(h + proximal * torch.eye(2), c + proximal * as_vector(meta_params))
        total = total + torch.linalg.solve(torch.eye(2) + h / proximal, h_query @ optimum - c_query)
    grads, metrics = build(cfg.estimator).estimate(problem, meta_params, generator)
    print(f"iMAML: inner_grad_norm {float(metrics['inner_grad_norm']):.3g}, "
          f"solver_residual {float(metrics['solver_residual']):.3g}")
    report("iMAML", grads, as_grads(total / len(tasks(problem))))
