"""Learned optimizers: the rule in the inner loop is the rule in the torch optimizer, exact
estimators agree on its meta-gradient, the meta-test protocol, and the user errors."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from metaopt_cli.backbones.mlp import MLP
from metaopt_cli.checkpoint import load_checkpoint
from metaopt_cli.data.digits import load
from metaopt_cli.data.splits import Split, SplitData
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.forward import Forward
from metaopt_cli.errors import UserError
from metaopt_cli.tasks.lopt.optimizer import LearnedOptimizer
from metaopt_cli.tasks.lopt.task import LearnedOpt

from conftest import assert_user_error, read_json, run_in_process, train_whole_and_resumed
from torchvision_files import train_on_stand_in_mnist

LOPT_TINY = ["task=learned_opt", "estimator=backprop", "task.horizon=6", "task.test_horizon=12", "task.test_seeds=2",
             "task.adam_lrs=[0.01]", "task.sgd_lrs=[0.1]", "trainer.meta_steps=3", "trainer.meta_batch=2",
             "trainer.progress=false", "logger=none"]
SETTINGS = dict(horizon=5, optimizer="mlp", hidden=8, batch_size=16, scored="train", scored_batch_size=64, step_mult=0.01,
                exp_mult=0.01, test_horizon=10, test_seeds=2, adam_lrs=[0.01], sgd_lrs=[0.1], self_train=True,
                self_train_warmup=1, self_train_step_mult=0.002)


def float64_problem(runs: int = 2, optimizer: str = "mlp"):
    data = load()
    data = SplitData(data.name, *(Split(s.x.double(), s.y) for s in (data.train, data.val, data.test)), data.num_classes)
    torch.set_default_dtype(torch.float64)
    try:
        task = LearnedOpt(data, lambda in_shape, num_outputs: MLP(in_shape, num_outputs, [8]), torch.device("cpu"),
                          **{**SETTINGS, "optimizer": optimizer, "hidden": 8 if optimizer == "mlp" else 3})
        generator = torch.Generator().manual_seed(0)
        meta_params = task.init_meta_params(generator)
        # A rule that moves the weights visibly, so every path of the meta-gradient carries weight.
        meta_params["b2" if optimizer == "mlp" else "b_out"] = torch.tensor([1.0, 0.0][:2 if optimizer == "mlp" else 1])
        return task, task.sample(generator, runs), meta_params
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("optimizer", ["mlp", "lstm"])
def test_the_torch_optimizer_applies_the_inner_loops_rule(optimizer):
    """Training one network with LearnedOptimizer on the problem's minibatches ends where the
    functional inner loop does."""
    task, problem, meta_params = float64_problem(runs=1, optimizer=optimizer)
    state = problem.init(meta_params)
    with torch.no_grad():
        for t in range(problem.horizon):
            state = problem.step(meta_params, state, t)
    net = task.make_net().double()
    net.load_state_dict({name: value[0] for name, value in problem.init_params.items()}, strict=False)
    learned = LearnedOptimizer(net.parameters(), meta_params, task.rule)
    for t in range(problem.horizon):
        learned.zero_grad()
        batch = problem.batches[t, 0]
        F.cross_entropy(net(problem.train_x[batch]), problem.train_y[batch]).backward()
        learned.step()
    for name, value in net.named_parameters():
        torch.testing.assert_close(value.detach(), state["w/" + name][0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["mlp", "lstm"])
def test_backprop_and_forward_mode_agree_on_the_rules_meta_gradient(optimizer):
    _, problem, meta_params = float64_problem(optimizer=optimizer)
    generator = torch.Generator()
    reverse = Backprop(checkpoint=False).estimate(problem, meta_params, generator)[0]
    forward = Forward("exact", directions=1, max_tangents=2048, chunk=256).estimate(problem, meta_params, generator)[0]
    assert all(reverse[name].abs().sum() > 0 for name in reverse)
    for name in reverse:
        torch.testing.assert_close(forward[name], reverse[name], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["mlp", pytest.param("lstm", marks=pytest.mark.slow)])
def test_a_model_outside_the_task_trains_with_a_run_of_the_cli(tmp_path, optimizer):
    """The README's use: a run's rule, loaded by LearnedOptimizer.from_run, trains a model the
    task never saw (a linear regression), lowering its loss."""
    result = run_in_process(["train", *LOPT_TINY, f"task.optimizer={optimizer}", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    for key in ("lopt_final_loss", "adam_final_loss", "sgd_final_loss", "adam_best_lr", "lopt_steps_to_adam"):
        assert math.isfinite(summary[key]), key
    assert (tmp_path / "run" / "meta_test.png").stat().st_size > 0

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x = torch.randn(256, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    optimizer = LearnedOptimizer.from_run(model.parameters(), tmp_path / "run")
    before = F.mse_loss(model(x), y).item()
    for _ in range(50):
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
    assert F.mse_loss(model(x), y).item() < before


@pytest.mark.slow
def test_from_run_refuses_another_tasks_checkpoint(tmp_path):
    result = run_in_process(["train", "task=hpo", "estimator=backprop", "task.horizon=5", "task.eval_seeds=2",
                             "task.random_search_trials=2", "trainer.meta_steps=1", "trainer.meta_batch=1",
                             "trainer.progress=false", "logger=none", "hydra.run.dir=hpo"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with pytest.raises(UserError, match="holds hpo meta-parameters, not a learned optimizer"):
        LearnedOptimizer.from_run(torch.nn.Linear(2, 1).parameters(), tmp_path / "hpo")
    # The same checkpoint handed to `metaopt eval` as a learned optimizer's: one error line.
    assert_user_error(run_in_process(["eval", f"run={tmp_path / 'hpo'}", "task=learned_opt"], tmp_path),
                      "task=learned_opt cannot apply", "which used task=hpo")


def test_self_training_hands_the_outer_step_to_the_rule_after_the_warm_up():
    """Warm-up steps are the given optimizer's; then θ moves by the rule θ applied to itself,
    with the rule's weights as they were before the step."""
    task, _, meta_params = float64_problem()
    meta_params = {name: value.clone().requires_grad_() for name, value in meta_params.items()}
    outer = task.outer_optimizer(meta_params, torch.optim.SGD(meta_params.values(), lr=0.1))
    grads = {name: torch.randn_like(value) for name, value in meta_params.items()}
    start = {name: value.detach().clone() for name, value in meta_params.items()}
    for name, value in meta_params.items():
        value.grad = grads[name]
    outer.step()  # warm-up: plain SGD
    for name, value in meta_params.items():
        torch.testing.assert_close(value.detach(), start[name] - 0.1 * grads[name])
    before = {name: value.detach().clone() for name, value in meta_params.items()}
    outer.step()  # the rule, weights `before`, trains the same weights with its own step_mult
    own_rule = replace(task.rule, step_mult=0.002)
    for name, value in meta_params.items():
        expected, _ = own_rule.update(before, before[name], grads[name], own_rule.init_state(before[name]), 0)
        torch.testing.assert_close(value.detach(), expected)
    assert not torch.equal(meta_params["w0"].detach(), before["w0"])


@pytest.mark.slow
def test_a_self_training_run_resumes_like_an_uninterrupted_one(tmp_path):
    """The checkpoint keeps the step count and the rule's own momenta: a run stopped one step
    after the hand-over and resumed ends bit-identical to an uninterrupted one."""
    runs = train_whole_and_resumed(tmp_path, [*LOPT_TINY, "task.self_train=true", "task.self_train_warmup=2"],
                                   stop_at=3, steps=4)
    ends = [load_checkpoint(run) for run in runs]
    assert ends[0]["optimizer"]["steps"] == ends[1]["optimizer"]["steps"] == 4
    for name, value in ends[0]["meta_params"].items():
        assert torch.equal(value, ends[1]["meta_params"][name]), name


@pytest.mark.parametrize("override, fragments", [
    ("task.horizon=0", ["task.horizon", "must be at least 1"]),
    # Windows longer than the horizon are not the problem: the horizon is.
    ("task.horizon=0 estimator=tbptt", ["task.horizon", "must be at least 1"]),
    ("task.self_train_warmup=-1", ["task.self_train_warmup", "0 or more"]),
    ("task.self_train_step_mult=0", ["task.self_train_step_mult", "must be positive"]),
    # A rule that steps itself by 1e30 diverges at once: the error names the knob that sized the step.
    ("task.self_train=true task.self_train_warmup=0 task.self_train_step_mult=1e30",
     ["non-finite", "lower task.self_train_step_mult (now 1e+30)"]),
    ("task.scored=test", ["task.scored", "train, val"]),
    ("task.optimizer=adam", ["task.optimizer", "mlp, lstm"]),
    ("estimator=implicit", ["learned_opt does not support estimator=implicit"]),
])
def test_bad_input_is_one_error_line(tmp_path, override, fragments):
    assert_user_error(run_in_process(["train", *LOPT_TINY, *override.split()], tmp_path), *fragments)


@pytest.mark.slow
def test_fashion_mnist_experiment_runs_on_stand_in_files(tmp_path):
    """learned_optimization's small task end to end — images shrunk to 8×8, online PES — on
    small files in Fashion-MNIST's real format, shrunk to seconds."""
    run = train_on_stand_in_mnist(tmp_path, "lopt_fashion_mnist_mlp", [
        "task.horizon=8", "task.test_horizon=16", "task.test_seeds=2", "task.scored_batch_size=20",
        "task.adam_lrs=[0.01]", "task.sgd_lrs=[0.1]", "estimator.truncation=4", "estimator.particles=2",
        "trainer.meta_steps=4"], folder="FashionMNIST")
    summary = read_json(run / "summary.json")
    assert (summary["data"], summary["estimator"], summary["steps"]) == ("fashion_mnist", "pes", 4)
    assert math.isfinite(summary["lopt_final_loss"]) and (run / "meta_test.png").exists()
