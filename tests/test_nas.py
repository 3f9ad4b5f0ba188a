"""Architecture search (task=nas): the operations and cells have DARTS's shapes, the exact
estimators agree with backprop on a tiny search in float64, DARTS's first-order variant is
∂L_val/∂α alone, the meta-batch is B independent runs, and the user errors."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metaopt_cli.data.digits import load
from metaopt_cli.data.splits import Split, SplitData
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.forward import Forward
from metaopt_cli.estimators.tbptt import TBPTT
from metaopt_cli.estimators.unroll import leaves
from metaopt_cli.functional import unprefixed
from metaopt_cli.tasks.nas.network import SearchNetwork
from metaopt_cli.tasks.nas.operations import CONV
from metaopt_cli.tasks.nas.problem import WEIGHTS, arch_weights
from metaopt_cli.tasks.nas.space import CONV_OPERATIONS, DENSE_OPERATIONS, cell_edges, search_space
from metaopt_cli.tasks.nas.task import NAS

from conftest import assert_user_error, read_json, run_in_process

NAS_TINY = ["task=nas", "trainer.meta_steps=2", "trainer.meta_batch=1", "trainer.progress=false", "task.horizon=3",
            "task.channels=8", "logger=none"]
SETTINGS = dict(space="dense", operations=list(DENSE_OPERATIONS), cells=2, nodes=2, channels=6, horizon=3, lr=0.1,
                momentum=0.9, weight_decay=1e-3, batch_size=16, val_batch=32, first_order=False, warm_start=False,
                top_k=2, log_alphas=True, eval_steps=2, eval_seeds=2, eval_lr=0.1, random_archs=2)


def float64_search(runs: int = 2, **changes):
    """A tiny dense search on digits in float64: the task, its problem of `runs` supernets, and α
    drawn wide enough that the operations' weights differ."""
    data = load()
    splits = (Split(split.x.double(), split.y) for split in (data.train, data.val, data.test))
    data = SplitData(data.name, *splits, data.num_classes)
    torch.set_default_dtype(torch.float64)
    try:
        task = NAS(data, torch.device("cpu"), **{**SETTINGS, **changes})
        generator = torch.Generator().manual_seed(0)
        meta_params = {name: value * 300 for name, value in task.init_meta_params(generator).items()}
        return task, task.sample(generator, runs), meta_params
    finally:
        torch.set_default_dtype(torch.float32)


def test_edges_are_enumerated_node_by_node_inputs_in_order():
    assert cell_edges(3) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (2, 3)]
    assert search_space("conv", 4, list(CONV_OPERATIONS), 2).alpha_shape == (14, len(CONV_OPERATIONS))


@pytest.mark.parametrize("name", CONV_OPERATIONS)
def test_every_conv_operation_keeps_the_shape_or_halves_it_on_a_reduction_edge(name):
    x = torch.randn(2, 4, 7, 7)
    assert CONV[name](4, 1)(x).shape == (2, 4, 7, 7)
    assert CONV[name](4, 2)(x).shape == (2, 4, 4, 4)


@pytest.mark.parametrize("kind, cells, in_shape", [("conv", 3, (1, 8, 8)), ("dense", 2, (1, 8, 8))])
def test_the_network_classifies_with_mixed_and_masked_edges(kind, cells, in_shape):
    operations = list(CONV_OPERATIONS if kind == "conv" else DENSE_OPERATIONS)
    space = search_space(kind, 2, operations, 2)
    net = SearchNetwork(space, in_shape, 10, cells, 4)
    assert net.reductions == ([False, True, True] if kind == "conv" else [False, False])
    weights = [torch.softmax(torch.randn(space.alpha_shape), -1) for _ in space.cell_kinds]
    x = torch.randn(5, *in_shape)
    assert net(x, *weights).shape == (5, 10)
    # A derived architecture: skip_connect on every node's first edge. Skipped operations run not at
    # all, so their parameters get no gradient; the kept ones do.
    mask = torch.zeros(space.alpha_shape)
    mask[[0, 2], operations.index("skip_connect")] = 1
    mask[1, operations.index(operations[-1])] = 1
    net(x, *[mask] * len(space.cell_kinds), discrete=True).sum().backward()
    for name, parameter in net.named_parameters():
        if ".edges." in name:
            edge, op = (int(part) for part in name.split(".edges.")[1].split(".")[:2])
            assert (parameter.grad is not None) == bool(mask[edge, op]), name


def test_exact_estimators_agree_with_backprop():
    """Backprop, tbptt with one window over the whole run, checkpointed backprop and exact
    forward mode are exact: equal to round-off on a tiny search, through momentum SGD on w."""
    _, problem, meta_params = float64_search()
    generator = torch.Generator()
    reverse = Backprop(checkpoint=False).estimate(problem, meta_params, generator)[0]
    assert all(reverse[name].abs().sum() > 0 for name in reverse)
    others = [Backprop(checkpoint=True), TBPTT(problem.horizon, random_window=False, online=False),
              Forward("exact", directions=1, max_tangents=64, chunk=16)]
    for estimator in others:
        grads = estimator.estimate(problem, meta_params, generator)[0]
        for name in reverse:
            torch.testing.assert_close(grads[name], reverse[name], rtol=1e-8, atol=1e-12)


def test_first_order_is_the_validation_loss_gradient_at_the_weights_reached():
    """DARTS's first order: Σ_t ∂L_val(w_t, α)/∂α over the scored steps, w_t a constant; not the
    full meta-gradient."""
    _, problem, meta_params = float64_search(first_order=True)
    first = Backprop(checkpoint=False).estimate(problem, meta_params, torch.Generator())[0]
    alpha = leaves(meta_params)
    state, direct = problem.init(alpha), 0
    for t in range(problem.horizon):
        state = {name: value.detach() for name, value in problem.step(alpha, state, t).items()}
        direct = direct + problem.meta_loss(alpha, state) / problem.horizon
    expected = torch.autograd.grad(direct, alpha["alpha_normal"])[0]
    torch.testing.assert_close(first["alpha_normal"], expected, rtol=1e-8, atol=1e-12)
    _, second_order, _ = float64_search()
    full = Backprop(checkpoint=False).estimate(second_order, meta_params, torch.Generator())[0]
    assert not torch.allclose(full["alpha_normal"], first["alpha_normal"], rtol=1e-3)


def test_a_meta_batch_is_independent_runs_averaged():
    """vmap over the meta-batch: the problem's meta-loss and meta-gradient are the mean of its
    runs' each on their own."""
    _, problem, meta_params = float64_search(runs=2)
    both = Backprop(checkpoint=False).estimate(problem, meta_params, torch.Generator())
    alone = [Backprop(checkpoint=False).estimate(problem.select(range(i, i + 1)), meta_params, torch.Generator())
             for i in range(2)]
    torch.testing.assert_close(both[1]["meta_loss"], (alone[0][1]["meta_loss"] + alone[1][1]["meta_loss"]) / 2)
    torch.testing.assert_close(both[0]["alpha_normal"], (alone[0][0]["alpha_normal"] + alone[1][0]["alpha_normal"]) / 2)


def test_the_inner_step_is_sgd_with_momentum_on_the_mixed_network():
    task, problem, meta_params = float64_search(runs=1)
    state = problem.init(meta_params)
    after = problem.step(meta_params, state, 0)
    weights = {name: value[0].clone().requires_grad_() for name, value in unprefixed(state, WEIGHTS).items()}
    batch = problem.batches[0, 0]
    logits = functional_call(task.net, weights, (problem.train_x[batch], *arch_weights(meta_params)))
    grads = torch.autograd.grad(F.cross_entropy(logits, problem.train_y[batch]), list(weights.values()))
    for (name, value), grad in zip(weights.items(), grads):
        expected = value - problem.lr * (grad + problem.weight_decay * value)  # momentum starts at zero
        torch.testing.assert_close(after[WEIGHTS + name][0], expected.detach())


def test_digits_experiment_searches_online_with_warm_weights(tmp_path):
    result = run_in_process(["train", "experiment=nas_digits", "trainer.meta_steps=3", "task.horizon=3",
                             "trainer.progress=false", "logger=none", "task.eval_steps=2", "task.random_archs=1",
                             "task.eval_seeds=2", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert (summary["task"], summary["estimator"]) == ("nas", "tbptt")
    records = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if line]
    # One supernet, one inner step a meta-step: the online run's step counter goes 1, 2, 3.
    assert [json.loads(line)["inner_step"] for line in records] == [1, 2, 3]
    assert "alpha_normal_0_linear" in records[-1]


def test_gradcheck_compares_every_applicable_estimator(tmp_path):
    result = run_in_process(["gradcheck", *NAS_TINY, "gradcheck.estimators=[backprop,tbptt,es,forward,implicit]",
                             "gradcheck.samples=1", "gradcheck.precisions=[]", "estimator=tbptt",
                             "estimator.truncation=1", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["estimator"]: row for row in read_json(tmp_path / "run" / "gradcheck.json")}
    assert rows["backprop"]["cosine"] == pytest.approx(1.0)
    assert all(rows[name]["cosine"] is not None for name in rows)
    assert rows["tbptt"]["rel_error"] > 1e-6  # a truncation of 1 out of 3 steps is biased


@pytest.mark.parametrize("override, fragments", [
    ("estimator=backprop task.nodes=0", ["task.nodes must be at least 1"]),
    ("estimator=backprop task.operations=[none,sep_conv_7x7]",
     ["sep_conv_7x7", "valid names are none, skip_connect, linear"]),
    ("estimator=backprop task.top_k=3", ["task.top_k=3", "only 2 inputs"]),
    ("estimator=backprop task.space=conv task.operations=[none,linear]", ["linear", "sep_conv_3x3"]),
    ("estimator=backprop task.warm_start=true", ["task.warm_start=true", "estimator.online=true"]),
    ("estimator.online=true estimator.truncation=1 task.warm_start=false", ["task.warm_start=true"]),
    ("estimator=implicit task.first_order=true", ["task.first_order=false"]),
])
def test_bad_input_is_one_error_line(tmp_path, override, fragments):
    assert_user_error(run_in_process(["train", *NAS_TINY, *override.split()], tmp_path), *fragments)


def test_each_step_is_scored_on_a_validation_minibatch_of_its_own():
    """As DARTS draws one per α step: the same weights score differently at steps 1 and 2."""
    _, problem, meta_params = float64_search(val_batch=16)
    state = problem.step(meta_params, problem.init(meta_params), 0)
    later = {**state, "steps": state["steps"] + 1}
    assert not torch.equal(problem.val_batches[0], problem.val_batches[1])
    assert problem.meta_loss(meta_params, state) != problem.meta_loss(meta_params, later)
