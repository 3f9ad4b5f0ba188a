"""task.method=trajectory_match (MTT): its meta-loss, its meta-gradient against an independent
computation, the CLI end to end, and the error lines about experts."""
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, assert_user_error, read_json, run_in_process

from metaopt_cli.backbones.mlp import MLP
from metaopt_cli.data.digits import load
from metaopt_cli.data.splits import Split, SplitData
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.forward import Forward
from metaopt_cli.estimators.tbptt import TBPTT
from metaopt_cli.functional import sample_inits
from metaopt_cli.tasks.distill.augment import augment
from metaopt_cli.tasks.distill.expert_training import train_experts
from metaopt_cli.tasks.distill.experts import save_expert, save_manifest
from metaopt_cli.tasks.distill.synthetic import SyntheticSet
from metaopt_cli.tasks.distill.task import Distill
from metaopt_cli.tasks.distill.trajectory_match import TrajectoryMatchProblem

TINY_EXPERTS = ["experts.count=2", "experts.epochs=4", "trainer.progress=false"]
TINY_MATCH = [*TINY, "task.method=trajectory_match", "task.inner_lr=0.01"]


def _linear(in_shape, num_outputs):
    return MLP(in_shape, num_outputs, [])  # one linear layer: the smallest network with every part


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.fixture
def digits64():
    data = load()
    return SplitData(data.name, *(Split(s.x.double(), s.y) for s in (data.train, data.val, data.test)),
                     data.num_classes)


def _store_experts(folder, data, make_net, count=2, epochs=4):
    trajectories, _ = train_experts(make_net, data, count, epochs, 0.05, 64, torch.Generator().manual_seed(1))
    for index in range(count):
        save_expert(folder, index, {name: value[index] for name, value in trajectories.items()})
    save_manifest(folder, {"data": "digits", "backbone": "mlp", "dataset": data.name,
                           "image_shape": list(data.in_shape), "classes": data.num_classes, "lr": 0.05,
                           "batch_size": 64, "epochs": epochs, "count": count,
                           "params": {name: list(value.shape[2:]) for name, value in trajectories.items()}})


def _task(data, folder, horizon=3, syn_batch=None, learn_labels=True, dsa=False):
    return Distill(data, _linear, horizon=horizon, images_per_class=1, learn_labels=learn_labels, learn_lr=True,
                   inner_lr=0.02, init="real", real_batch=8, eval_models=2, eval_steps=2, eval_lrs=[0.1],
                   method="trajectory_match", experts=str(folder), expert_epochs=2, max_start_epoch=2,
                   syn_batch=syn_batch, dsa=dsa)


def test_meta_loss_is_zero_where_the_synthetic_steps_are_the_expert(float64, digits64):
    """An 'expert' that itself took the N steps on the synthetic set at the inner lr: the student
    retraces it exactly, and lands on its target."""
    net = _linear(digits64.in_shape, 10)
    labels = torch.arange(10)
    synthetic = SyntheticSet(labels, 0.1, learn_labels=False, learn_lr=True)
    meta_params = synthetic.init_meta_params(digits64.train.x[:10], 10)
    start = sample_inits(lambda: _linear(digits64.in_shape, 10), 2, torch.Generator().manual_seed(0), "cpu")
    target = {name: value.clone() for name, value in start.items()}
    for _ in range(4):  # plain full-batch gradient descent, written out
        for run in range(2):
            params = {name: value[run].clone().requires_grad_() for name, value in target.items()}
            logits = digits64.train.x[:10].flatten(1) @ params["net.1.weight"].T + params["net.1.bias"]
            grads = torch.autograd.grad(F.cross_entropy(logits, labels), list(params.values()))
            for (name, value), grad in zip(params.items(), grads):
                target[name][run] = value.detach() - 0.1 * grad
    problem = TrajectoryMatchProblem(net, synthetic, start, target, torch.arange(10).expand(4, 2, -1), horizon=4,
                                     augmentations={})
    state = problem.init(meta_params)
    assert problem.meta_loss(meta_params, state).item() == pytest.approx(1.0)  # not moved: the expert's own distance
    for t in range(4):
        state = problem.step(meta_params, state, t)
    assert problem.meta_loss(meta_params, state).item() < 1e-20
    # Half the lr moves the student elsewhere: the loss sees it.
    meta_params["log_lr"] = meta_params["log_lr"] - math.log(2)
    state = problem.init(meta_params)
    for t in range(4):
        state = problem.step(meta_params, state, t)
    assert problem.meta_loss(meta_params, state).item() > 1e-3


def _independent_meta_loss(problem, meta_params):
    """The meta-loss of `problem` from its sampled experts and minibatches, written out with plain
    autograd and a hand-written linear network: no vmap, no torch.func; with DSA, each step's
    minibatch under its draw."""
    images, label_logits, lr = meta_params["images"], meta_params["label_logits"], meta_params["log_lr"].exp()
    targets = label_logits.softmax(-1)
    total = 0.0
    for run in range(problem.meta_batch):
        weight = problem.start_params["net.1.weight"][run].clone().requires_grad_()
        bias = problem.start_params["net.1.bias"][run].clone().requires_grad_()
        for t in range(problem.horizon):
            batch = problem.batches[t, run]
            x = images[batch]
            if problem.augmentations:
                x = augment(x, {key: value[t, run] for key, value in problem.augmentations.items()})
            logits = x.flatten(1) @ weight.T + bias
            loss = -(targets[batch] * logits.log_softmax(-1)).sum(-1).mean()
            grad_w, grad_b = torch.autograd.grad(loss, (weight, bias), create_graph=True)
            weight, bias = weight - lr * grad_w, bias - lr * grad_b
        target_w, target_b = problem.target_params["net.1.weight"][run], problem.target_params["net.1.bias"][run]
        start_w, start_b = problem.start_params["net.1.weight"][run], problem.start_params["net.1.bias"][run]
        moved = (start_w - target_w).pow(2).sum() + (start_b - target_b).pow(2).sum()
        total = total + ((weight - target_w).pow(2).sum() + (bias - target_b).pow(2).sum()) / moved
    return total / problem.meta_batch


@pytest.mark.parametrize("estimator", [Backprop(checkpoint=False), Backprop(checkpoint=True),
                                       TBPTT(truncation=3, random_window=False, online=False),
                                       Forward(mode="exact", directions=1, max_tangents=10**4, chunk=128)],
                         ids=["backprop", "backprop_checkpoint", "tbptt_whole", "forward_exact"])
def test_meta_gradient_matches_an_independent_computation(float64, digits64, tmp_path, estimator):
    """Every exact estimator's meta-gradient, in float64, against autograd through a hand-written
    loop over the same sampled experts, start epochs and minibatches."""
    make_net = lambda: _linear(digits64.in_shape, 10)  # noqa: E731
    _store_experts(tmp_path, digits64, make_net)
    task = _task(digits64, tmp_path, horizon=3, syn_batch=4)
    generator = torch.Generator().manual_seed(0)
    meta_params = task.init_meta_params(generator)
    problem = task.sample(generator, 3)
    assert problem.batches.shape == (3, 3, 4)
    # Draws that differ between runs, so that a mixed-up run would show.
    assert len({tuple(row.tolist()) for row in problem.batches[0]}) > 1
    grads, metrics = estimator.estimate(problem, meta_params, torch.Generator().manual_seed(1))
    leaves = {name: value.detach().requires_grad_() for name, value in meta_params.items()}
    loss = _independent_meta_loss(problem, leaves)
    expected = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    assert metrics["meta_loss"].item() == pytest.approx(loss.item(), rel=1e-10)
    for name in meta_params:
        torch.testing.assert_close(grads[name], expected[name], rtol=1e-7, atol=1e-10)
    assert all(grads[name].abs().max() > 0 for name in meta_params)


def test_meta_gradient_with_siamese_augmentation(float64, digits64, tmp_path):
    """MTT augments each student step's synthetic minibatch (task.dsa=true): the gradient through
    the augmentation against the hand-written loop."""
    _store_experts(tmp_path, digits64, lambda: _linear(digits64.in_shape, 10))
    task = _task(digits64, tmp_path, horizon=3, syn_batch=4, dsa=True)
    generator = torch.Generator().manual_seed(0)
    meta_params = task.init_meta_params(generator)
    problem = task.sample(generator, 2)
    assert all(value.shape[:2] == (3, 2) for value in problem.augmentations.values()) and problem.augmentations
    grads, _ = Backprop(checkpoint=False).estimate(problem, meta_params, torch.Generator().manual_seed(1))
    leaves = {name: value.detach().requires_grad_() for name, value in meta_params.items()}
    expected = torch.autograd.grad(_independent_meta_loss(problem, leaves), list(leaves.values()))
    for name, value in zip(leaves, expected):
        torch.testing.assert_close(grads[name], value, rtol=1e-7, atol=1e-10)


def test_finite_differences_agree_on_the_inner_lr(float64, digits64, tmp_path):
    make_net = lambda: _linear(digits64.in_shape, 10)  # noqa: E731
    _store_experts(tmp_path, digits64, make_net)
    task = _task(digits64, tmp_path, horizon=4, learn_labels=False)
    generator = torch.Generator().manual_seed(0)
    meta_params = task.init_meta_params(generator)
    problem = task.sample(generator, 2)
    grads, _ = Backprop(checkpoint=False).estimate(problem, meta_params, generator)
    step = 1e-6

    def loss_at(log_lr):
        shifted = {**meta_params, "log_lr": torch.tensor(log_lr)}
        state = problem.init(shifted)
        for t in range(problem.horizon):
            state = problem.step(shifted, state, t)
        return problem.meta_loss(shifted, state).item()

    log_lr = meta_params["log_lr"].item()
    numeric = (loss_at(log_lr + step) - loss_at(log_lr - step)) / (2 * step)
    assert grads["log_lr"].item() == pytest.approx(numeric, rel=1e-6)


def test_sampling_draws_experts_and_start_epochs_within_bounds(digits64, tmp_path, float64):
    make_net = lambda: _linear(digits64.in_shape, 10)  # noqa: E731
    _store_experts(tmp_path, digits64, make_net, count=3, epochs=5)
    stored = torch.stack([torch.load(tmp_path / f"expert_{i}.pt", weights_only=True)["net.1.bias"] for i in range(3)])
    task = Distill(digits64, _linear, horizon=2, images_per_class=1, learn_labels=False, learn_lr=True, inner_lr=0.02,
                   init="real", real_batch=8, eval_models=2, eval_steps=2, eval_lrs=[0.1], method="trajectory_match",
                   experts=str(tmp_path), expert_epochs=3, max_start_epoch=3, syn_batch=None)
    problem = task.sample(torch.Generator().manual_seed(0), 64)
    seen = set()
    for run in range(64):
        start, target = problem.start_params["net.1.bias"][run], problem.target_params["net.1.bias"][run]
        hits = [(e, t) for e in range(3) for t in range(3) if torch.equal(stored[e, t], start)
                and torch.equal(stored[e, t + 3], target)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) == 9  # every expert and start epoch 0 … max_start_epoch − 1 comes up
    assert problem.batches.shape == (2, 64, 10)  # syn_batch null: all ten synthetic images each step


@pytest.fixture(scope="module")
def experts_dir(tmp_path_factory):
    """A working directory whose outputs/experts/digits-mlp holds tiny experts."""
    cwd = tmp_path_factory.mktemp("mtt")
    result = run_in_process(["experts", *TINY_EXPERTS, "hydra.run.dir=experts_log"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd


@pytest.mark.parametrize("estimator", ["tbptt", "backprop", "es", "pes", "forward"])
def test_train_after_experts_in_process(experts_dir, estimator):
    run = f"run_{estimator}"
    result = run_in_process(["train", *TINY_MATCH, f"estimator={estimator}", f"hydra.run.dir={run}"], experts_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(experts_dir / run / "summary.json")
    assert 0 <= summary["distilled_test_acc"] <= 1 and summary["steps"] == 4, summary
    lines = (experts_dir / run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all("inner_lr" in line for line in lines)


def test_no_experts_is_one_line_saying_how_to_make_them(tmp_path):
    line = assert_user_error(run_in_process(["train", *TINY_MATCH, "hydra.run.dir=run"], tmp_path),
                             "task.method=trajectory_match needs expert trajectories")
    assert "`metaopt experts data=digits backbone=mlp`" in line, line
    line = assert_user_error(run_in_process(["train", *TINY_MATCH, "backbone.hidden=[32]", "hydra.run.dir=run2"],
                                            tmp_path), "needs expert trajectories")
    assert "`metaopt experts data=digits backbone=mlp 'backbone.hidden=[32]'`" in line, line
    assert not (tmp_path / "run").exists() and not (tmp_path / "run2").exists()  # said at start-up


@pytest.mark.parametrize("overrides, fragments", [
    (["backbone.hidden=[32]", "task.experts=outputs/experts/digits-mlp"],
     ["parameters do not match this run's backbone",
      "`metaopt experts data=digits backbone=mlp 'backbone.hidden=[32]'` and drop task.experts"]),
    (["data.image_size=16", "task.experts=outputs/experts/digits-mlp"],
     ["learned digits (10 classes of 1×8×8 images), and this run distills digits (10 classes of 1×16×16)",
      "`metaopt experts data=digits backbone=mlp data.image_size=16`"]),
    (["task.max_start_epoch=4"], ["match up to epoch 5", "store epochs 0 to 4",
                                  "`metaopt experts data=digits backbone=mlp experts.epochs=5`"]),
    (["task.syn_batch=0"], ["task.syn_batch must be at least 1"]),
    (["task.expert_epochs=0"], ["task.expert_epochs must be at least 1"]),
])
def test_experts_that_do_not_fit_are_one_line(experts_dir, overrides, fragments):
    result = run_in_process(["train", *TINY_MATCH, *overrides, "hydra.run.dir=bad"], experts_dir)
    assert_user_error(result, *fragments)


def test_a_bad_method_fails_at_composition(tmp_path):
    assert_user_error(run_in_process(["train", *TINY, "task.method=trajectory", "hydra.run.dir=run"], tmp_path),
                      "task.method")
