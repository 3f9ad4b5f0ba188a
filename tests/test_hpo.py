"""Hyperparameter optimisation: the inner run is torch.optim.SGD's, the estimators agree with
exact meta-gradients, the protocol's figures and picture, and the user errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metaopt_cli.backbones.mlp import MLP
from metaopt_cli.data.digits import load
from metaopt_cli.data.splits import Split, SplitData
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.forward import Forward
from metaopt_cli.estimators.implicit import Implicit
from metaopt_cli.estimators.tbptt import TBPTT
from metaopt_cli.tasks.hpo.bayes_opt import tpe_minimum
from metaopt_cli.tasks.hpo.evaluate import REPORTED, _best_trial, evaluate_hyperparams
from metaopt_cli.tasks.hpo.search_space import RANGES, searched
from metaopt_cli.tasks.hpo.task import HPO

from conftest import assert_user_error, read_json, run_in_process, train_whole_and_resumed
from torchvision_files import train_on_stand_in_mnist

HPO_TINY = ["task=hpo", "trainer.meta_steps=6", "trainer.meta_batch=1", "trainer.progress=false", "task.horizon=20",
            "task.decay_steps=20", "task.eval_seeds=2", "task.random_search_trials=4", "logger=none"]
SETTINGS = dict(horizon=6, hyperparams=["lr", "momentum", "weight_decay"], schedule="inverse_decay", decay_steps=6,
                lr=0.2, decay=0.5, momentum=0.8, weight_decay=1e-3, per_layer_weight_decay=True, batch_size=16,
                val_batch=64, objective="sum", eval_seeds=2, random_search_trials=3)


def float64_task(hidden=(8,), **changes) -> HPO:
    data = load()
    data = SplitData(data.name, *(Split(s.x.double(), s.y) for s in (data.train, data.val, data.test)), data.num_classes)
    torch.set_default_dtype(torch.float64)
    try:
        return HPO(data, lambda in_shape, num_outputs: MLP(in_shape, num_outputs, hidden), torch.device("cpu"),
                   **{**SETTINGS, **changes})
    finally:
        torch.set_default_dtype(torch.float32)


def problem_of(task: HPO, runs: int = 2):
    generator = torch.Generator().manual_seed(0)
    torch.set_default_dtype(torch.float64)
    try:
        meta_params = task.init_meta_params(generator)
        return task.sample(generator, runs), meta_params
    finally:
        torch.set_default_dtype(torch.float32)


def test_inner_run_is_torch_sgd_with_momentum_and_weight_decay():
    """K steps of the problem equal torch.optim.SGD(momentum, weight_decay) with the lr set
    from the schedule before each step."""
    task = float64_task()
    problem, meta_params = problem_of(task, runs=1)
    hp = task.hyperparams
    state = problem.init(meta_params)
    with torch.no_grad():
        for t in range(problem.horizon):
            state = problem.step(meta_params, state, t)
    params = {name: value[0].clone().requires_grad_() for name, value in problem.init_params.items()}
    optimizer = torch.optim.SGD(params.values(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    for t in range(problem.horizon):
        optimizer.param_groups[0]["lr"] = hp.lr / (1 + t / hp.decay_steps) ** hp.decay
        optimizer.zero_grad()
        batch = problem.batches[t, 0]
        F.cross_entropy(functional_call(task.net, params, (problem.train_x[batch],)), problem.train_y[batch]).backward()
        optimizer.step()
    for name, value in params.items():
        torch.testing.assert_close(state["w/" + name][0], value.detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("objective", ["final", "sum"])
def test_reverse_and_forward_mode_meta_gradients_agree(objective):
    """Backprop, exact forward mode and tbptt with one window over the whole run are three
    exact methods: equal to round-off, for every kind of hyperparameter at once."""
    task = float64_task(objective=objective)
    problem, meta_params = problem_of(task)
    generator = torch.Generator()
    reverse = Backprop(checkpoint=False).estimate(problem, meta_params, generator)[0]
    checkpointed = Backprop(checkpoint=True).estimate(problem, meta_params, generator)[0]
    forward = Forward("exact", directions=1, max_tangents=64, chunk=8).estimate(problem, meta_params, generator)[0]
    whole = TBPTT(problem.horizon, random_window=False, online=False).estimate(problem, meta_params, generator)[0]
    assert set(reverse) == {"log_lr", "decay", "logit_momentum", "log_weight_decay"}
    assert all(reverse[name].abs().sum() > 0 for name in reverse)
    for other in (checkpointed, forward, whole):
        for name in reverse:
            torch.testing.assert_close(other[name], reverse[name], rtol=1e-8, atol=1e-12)


def test_implicit_weight_decay_gradient_matches_backprop_at_the_optimum():
    """Logistic regression with weight decay is strongly convex: full-batch gradient descent
    for many steps reaches the optimum, where the implicit function theorem's meta-gradient
    equals backprop through the whole run."""
    task = float64_task(hidden=(), horizon=400, hyperparams=["weight_decay"], schedule="constant", momentum=0.0,
                        weight_decay=0.05, per_layer_weight_decay=False, batch_size=2000, lr=0.5, objective="final")
    problem, meta_params = problem_of(task, runs=1)
    exact = Backprop(checkpoint=False).estimate(problem, meta_params, torch.Generator())[0]["log_weight_decay"]
    implicit = Implicit("cg", iterations=50, damping=0.0, neumann_lr=0.1).estimate(
        problem, meta_params, torch.Generator())[0]["log_weight_decay"]
    assert exact.abs() > 1e-4
    torch.testing.assert_close(implicit, exact, rtol=1e-3, atol=0)


def test_per_step_schedule_gets_a_gradient_for_every_step():
    task = float64_task(schedule="per_step", hyperparams=["lr"], objective="final")
    problem, meta_params = problem_of(task)
    grads = Backprop(checkpoint=False).estimate(problem, meta_params, torch.Generator())[0]
    assert grads["log_lr"].shape == (problem.horizon,) and (grads["log_lr"] != 0).all()


def test_random_search_never_picks_a_diverged_trial():
    task = float64_task(hyperparams=["lr"], schedule="constant")
    trials = {"log_lr": torch.tensor([math.log(1e3), math.log(0.1), math.log(1e-4)], dtype=torch.float64)}
    torch.set_default_dtype(torch.float64)
    try:
        best = _best_trial(task, trials, torch.Generator().manual_seed(0))
    finally:
        torch.set_default_dtype(torch.float32)
    assert best["log_lr"].exp().item() == pytest.approx(0.1)


def test_tpe_improves_on_its_first_trial_and_repeats_itself_for_a_seed():
    """A bowl in log-lr and momentum, with a cliff where a run would diverge: TPE's best beats
    its first (random) trial, never sits on the cliff, and the same seed gives the same trials."""
    tried = []

    def loss(point):
        if point["lr"] > 0.5:
            return math.nan
        return (math.log(point["lr"]) - math.log(0.05)) ** 2 + (point["momentum"] - 0.9) ** 2

    def losses(points, tried):
        tried += points
        return [loss(point) for point in points]

    ranges = {name: RANGES[name] for name in ("lr", "momentum")}
    tried, again = [], []
    best = tpe_minimum(ranges, 60, seed=3, losses=lambda points: losses(points, tried))
    assert len(tried) == 60 and loss(best) < loss(tried[0]) and best["lr"] <= 0.5
    assert tpe_minimum(ranges, 60, seed=3, losses=lambda points: losses(points, again)) == best and again == tried


@pytest.mark.parametrize(("learned", "schedule", "names"), [
    (["lr"], "inverse_decay", ("lr", "decay")),
    (["lr", "weight_decay"], "per_step", ("lr", "weight_decay")),
    (["momentum"], "constant", ("momentum",)),
])
def test_the_searches_search_the_learned_hyperparameters(learned, schedule, names):
    task = float64_task(hyperparams=learned, schedule=schedule, per_layer_weight_decay=False)
    assert searched(task.hyperparams) == names


def test_evaluation_reports_tpe_beside_random_search_at_the_same_budget():
    """Every declared figure, finite; TPE's trials and inner steps are random search's; the same
    evaluation generator gives the same figures."""
    task = float64_task()

    def evaluation():
        torch.set_default_dtype(torch.float64)
        try:
            return evaluate_hyperparams(task, task.init_meta_params(None), torch.Generator().manual_seed(1))[0]
        finally:
            torch.set_default_dtype(torch.float32)

    results = evaluation()
    assert set(REPORTED) <= set(results)
    assert all(math.isfinite(results[name]) for name in REPORTED if name.startswith("bayes_opt"))
    assert results["bayes_opt_trials"] == results["random_search_trials"] == 3
    assert results["bayes_opt_inner_steps"] == results["random_search_inner_steps"] == 3 * 6
    assert evaluation() == results


@pytest.mark.slow
def test_train_reports_the_protocol_and_plots_the_schedule(tmp_path):
    result = run_in_process(["train", *HPO_TINY, "estimator=backprop", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    for prefix in ("learned", "initial", "random_search", "bayes_opt"):
        for name in ("val_loss", "test_loss", "test_acc"):
            assert math.isfinite(summary[f"{prefix}_{name}"]), (prefix, name)
    assert summary["random_search_trials"] == 4 and summary["random_search_inner_steps"] == 4 * 20
    # The learned lr is not the initial one: θ moved, and the summary says where to.
    assert summary["learned_lr"] != pytest.approx(0.1, rel=1e-6)
    assert (tmp_path / "run" / "schedule.png").stat().st_size > 0


@pytest.mark.slow
def test_online_pes_meta_trains_and_resumes_like_an_uninterrupted_run(tmp_path):
    """Online, PES's particles run on across meta-steps; the checkpoint keeps them, so a run
    stopped and resumed ends where an uninterrupted one does."""
    online = [*HPO_TINY, "estimator=pes", "estimator.online=true", "estimator.truncation=5", "estimator.particles=2",
              "trainer.checkpoint_every=3"]
    runs = train_whole_and_resumed(tmp_path, online, stop_at=3, steps=6)
    ends = [read_json(run / "summary.json") for run in runs]
    assert ends[0]["learned_lr"] == ends[1]["learned_lr"] and ends[0]["learned_decay"] == ends[1]["learned_decay"]


@pytest.mark.parametrize("override, fragments", [
    ("task.lr=0", ["task.lr", "must be positive"]),
    ("task.lr=-0.1", ["task.lr", "must be positive"]),
    ("task.hyperparams=[lr,beta1]", ["unknown hyperparameter 'beta1'", "lr, momentum, weight_decay"]),
    ("estimator=implicit", ["implicit", "task.hyperparams=[weight_decay]"]),
    ("task.objective=best", ["task.objective", "final, sum"]),
    # The PES experiment's particles mean nothing to tbptt: say so, not just "unknown key".
    ("experiment=hpo_digits_lr_schedule estimator=tbptt",
     ["'estimator.particles'", "experiment/hpo_digits_lr_schedule sets it", "keep that estimator"]),
])
def test_bad_input_is_one_error_line(tmp_path, override, fragments):
    assert_user_error(run_in_process(["train", *HPO_TINY, *override.split()], tmp_path), *fragments)


def test_mnist_schedule_experiment_runs_on_stand_in_files(tmp_path):
    """The PES paper's setup end to end — the two-layer MLP, online PES windows — on small
    files in MNIST's real format, shrunk to seconds."""
    run = train_on_stand_in_mnist(tmp_path, "hpo_mnist_lr_schedule", [
        "task.horizon=12", "task.decay_steps=12", "task.batch_size=10", "task.eval_seeds=2",
        "task.random_search_trials=3", "estimator.truncation=4", "estimator.particles=2", "trainer.meta_steps=6"])
    summary = read_json(run / "summary.json")
    assert (summary["data"], summary["estimator"], summary["steps"]) == ("mnist", "pes", 6)
    assert math.isfinite(summary["learned_test_acc"]) and (run / "schedule.png").exists()


def test_list_says_where_implicit_serves_hpo(tmp_path):
    result = run_in_process(["list"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hpo × implicit: only with task.hyperparams=[weight_decay]" in result.stdout
