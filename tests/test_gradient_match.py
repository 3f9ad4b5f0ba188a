"""task=distill task.method=gradient_match (Zhao et al. 2021): its distance, its meta-gradient
against the paper's procedure written out by hand, and the command line."""
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, assert_user_error, read_json, run_in_process
from torch.func import functional_call

from metaopt_cli.backbones.convnet import ConvNet
from metaopt_cli.backbones.mlp import MLP
from metaopt_cli.data.digits import load
from metaopt_cli.data.splits import Split, SplitData
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.forward import Forward
from metaopt_cli.estimators.tbptt import TBPTT
from metaopt_cli.tasks.distill.augment import augment
from metaopt_cli.tasks.distill.gradient_match import layerwise_distance
from metaopt_cli.tasks.distill.task import Distill

HORIZON, NET_STEPS, INNER_LR = 3, 2, 0.05


def test_layerwise_distance_is_one_minus_cosine_per_output_unit():
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    conv = torch.randn(4, 2, 3, 3)
    real = {"w": weight, "conv": conv, "bias": torch.ones(3)}
    # Row by row: the same direction (0), the opposite (2), orthogonal (1); a conv filter the same (0).
    synthetic = {"w": torch.tensor([[5.0, 0.0], [0.0, -1.0], [1.0, -1.0]]), "conv": 2 * conv, "bias": -torch.ones(3)}
    torch.testing.assert_close(layerwise_distance(real, synthetic), torch.tensor(3.0), atol=1e-5, rtol=0)


BACKBONES = {"mlp": lambda in_shape, num_outputs: MLP(in_shape, num_outputs, [4]),
             "convnet": lambda in_shape, num_outputs: ConvNet(in_shape, num_outputs, width=3)}


@pytest.fixture(scope="module", params=[*BACKBONES, "mlp+dsa"])
def matching(request):
    """A float64 gradient-matching task on the digits, with θ and a problem of 2 networks; "+dsa":
    with differentiable Siamese augmentation."""
    backbone, dsa = request.param.removesuffix("+dsa"), request.param.endswith("+dsa")
    data = load(val_fraction=0.2, test_fraction=0.2, split_seed=0)
    data = SplitData(data.name, *(Split(s.x.double(), s.y) for s in (data.train, data.val, data.test)), data.num_classes)
    torch.set_default_dtype(torch.float64)
    try:
        task = Distill(data, BACKBONES[backbone], horizon=HORIZON,
                       images_per_class=1, learn_labels=True, learn_lr=False, inner_lr=INNER_LR, init="real",
                       real_batch=5, eval_models=2, eval_steps=5, eval_lrs=[0.1], method="gradient_match",
                       net_steps=NET_STEPS, dsa=dsa)
        generator = torch.Generator().manual_seed(0)
        meta_params = task.init_meta_params(generator)
        return task, task.sample(generator, 2), meta_params
    finally:
        torch.set_default_dtype(torch.float32)


def by_hand(task, problem, meta_params) -> torch.Tensor:
    """The paper's loop, one network at a time with torch.autograd: match every class at the
    fresh network, then train it NET_STEPS steps on the synthetic set (detached) between matchings;
    with DSA, each class's real and synthetic batch under the same draw."""
    images, logits = meta_params["images"], meta_params["label_logits"]
    soft = logits.softmax(-1)
    classes = task.data.num_classes
    total = 0.0
    networks = problem.meta_batch
    for m in range(networks):
        params = {name: value[m].clone().requires_grad_() for name, value in problem.init_params.items()}

        def loss(x, targets):
            return F.cross_entropy(functional_call(task.net, params, (x,)), targets)

        for t in range(HORIZON):
            for _ in range(NET_STEPS if t > 0 else 0):
                grads = torch.autograd.grad(loss(images.detach(), soft.detach()), list(params.values()))
                params = {name: (value - INNER_LR * g).detach().requires_grad_()
                          for (name, value), g in zip(params.items(), grads)}
            for c in range(classes):
                draw = {key: value[t, m, c] for key, value in problem.augmentations.items()}
                siamese = (lambda x: augment(x, draw)) if draw else (lambda x: x)  # noqa: B023
                index = problem.real_index[t, m, c]
                real = torch.autograd.grad(loss(siamese(problem.train_x[index]), torch.full((len(index),), c)),
                                           list(params.values()))
                mine = siamese(images[task.synthetic.labels == c])
                synthetic = torch.autograd.grad(loss(mine, soft[task.synthetic.labels == c]), list(params.values()),
                                                create_graph=True)
                for g_real, g_syn in zip(real, synthetic):
                    if g_real.dim() >= 2:  # one row per output unit; biases and norm scales left out
                        g_real, g_syn = g_real.reshape(len(g_real), -1), g_syn.reshape(len(g_syn), -1)
                        dots = torch.einsum("oi,oi->o", g_real, g_syn)
                        # A dead unit's row is zero: vector_norm's derivative there is 0, sqrt's is not finite.
                        norms = torch.linalg.vector_norm(g_real, dim=1) * torch.linalg.vector_norm(g_syn, dim=1)
                        total = total + (1 - dots / (norms + 1e-6)).sum() / (HORIZON * networks)
    return total


def test_meta_gradient_equals_the_papers_loop_by_hand(matching):
    task, problem, meta_params = matching
    assert problem.real_index.shape == (HORIZON, 2, 10, 5)
    assert all(value.shape[:3] == (HORIZON, 2, 10) for value in problem.augmentations.values())
    assert bool(problem.augmentations) == (task.augment is not None)
    leaves = {name: value.detach().requires_grad_() for name, value in meta_params.items()}
    expected_loss = by_hand(task, problem, leaves)
    expected = dict(zip(leaves, torch.autograd.grad(expected_loss, list(leaves.values()))))
    assert expected["images"].abs().sum() > 0 and expected["label_logits"].abs().sum() > 0
    # The networks never depend on θ: every truncation, and forward mode, give the exact gradient.
    estimators = {"backprop": Backprop(checkpoint=False), "tbptt-1": TBPTT(1, False, False)}
    if task.augment is None:  # grid_sample has no forward-mode rule: task.dsa refuses forward (below)
        estimators["forward-exact"] = Forward("exact", 1, 10_000, 1024)
    for name, estimator in estimators.items():
        grads, metrics = estimator.estimate(problem, meta_params, torch.Generator().manual_seed(1))
        # (tbptt sums its windows' losses, a logged metric, in float32)
        torch.testing.assert_close(metrics["meta_loss"].double(), expected_loss.detach(), rtol=1e-6, atol=0, msg=name)
        for key in expected:
            torch.testing.assert_close(grads[key], expected[key], rtol=1e-8, atol=1e-10, msg=f"{name} {key}")


def test_networks_train_on_the_synthetic_set_between_matchings(matching):
    _, problem, meta_params = matching
    state = problem.init(meta_params)
    fresh = problem.step(meta_params, state, 0)
    trained = problem.step(meta_params, fresh, 1)
    weight = next(name for name in state if name.endswith("weight"))
    torch.testing.assert_close(fresh[weight], state[weight], rtol=0, atol=0)  # the first matching sees it fresh
    assert not torch.equal(trained[weight], fresh[weight]) and not trained[weight].requires_grad
    assert torch.equal(trained["real_index"], problem.real_index[1])


def test_gradient_match_trains_from_the_command_line(tmp_path):
    result = run_in_process(["train", *TINY, "task.method=gradient_match", "task.horizon=2", "task.real_batch=8",
                             "estimator.truncation=1", "estimator.online=true", "backbone.hidden=[8]",
                             "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    for key in Distill.reported_metrics:
        if key != "random_real_lr":
            assert 0 <= summary[key] <= 1, key
    assert summary["steps"] == 4 and "learned_inner_lr" not in summary  # the lr is not learned here


def test_siamese_augmentation_runs_from_the_command_line(tmp_path):
    """task.dsa=true through the command line (the exact gradient with DSA: above)."""
    result = run_in_process(["train", *TINY, "task.method=gradient_match", "task.dsa=true", "task.horizon=2",
                             "task.real_batch=4", "estimator=pes", "estimator.truncation=1", "hydra.run.dir=run"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(tmp_path / "run" / "summary.json")["distilled_test_acc"] > 0


def test_convnet_gradient_match_runs_on_the_digits_as_they_are(tmp_path):
    result = run_in_process(["train", *TINY, "task.method=gradient_match", "task.horizon=2", "task.real_batch=4",
                             "estimator=backprop", "backbone=convnet", "backbone.width=4", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(tmp_path / "run" / "summary.json")["distilled_test_acc"] > 0


@pytest.mark.parametrize(("overrides", "fragments"), [
    (["estimator=backprop", "estimator.checkpoint=true"], ["estimator.checkpoint=true", "estimator.truncation=1"]),
    (["estimator=implicit"], ["does not support estimator=implicit"]),
    (["task.net_steps=0"], ["task.net_steps must be positive"]),
    (["task.method=match"], ["task.method"]),
    (["task.dsa=true", "estimator=forward"], ["task.dsa=true", "forward mode"]),
])
def test_unsupported_settings_are_one_line(overrides, fragments, tmp_path):
    result = run_in_process(["train", *TINY, "task.method=gradient_match", *overrides], tmp_path)
    assert_user_error(result, *fragments)


@pytest.mark.slow
def test_gradient_matching_beats_random_real_images_on_the_digits(tmp_path):
    """One image per class in the paper's setting (one matching per fresh network): the
    matched images train networks far better than one random real image per class does."""
    result = run_in_process(["train", "task.method=gradient_match", "task.images_per_class=1", "task.horizon=1",
                             "task.inner_lr=0.01", "estimator=backprop", "trainer.meta_steps=100",
                             "trainer.progress=false", "task.eval_models=3", "logger=none", "hydra.run.dir=run"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["distilled_test_acc"] > summary["random_real_test_acc"] + 0.1, summary
