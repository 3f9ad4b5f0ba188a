"""Few-shot tasks: MAML's batched meta-gradient against a plain per-task loop, the protocol's
figures, and the user errors of episodic data."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metaopt_cli.backbones.conv4 import Conv4
from metaopt_cli.backbones.mlp import MLP
from metaopt_cli.build import build, first_problem
from metaopt_cli.data.digits import load
from metaopt_cli.data.episodes import Episodes, make_few_shot_data
from metaopt_cli.data.sinusoid import load as load_sinusoid
from metaopt_cli.data.splits import Split, SplitData
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.tbptt import TBPTT
from metaopt_cli.config.tasks import Batching
from metaopt_cli.tasks.fewshot.maml import MAML, resolved_batching
from metaopt_cli.tasks.fewshot.heads.proto import squared_distances
from metaopt_cli.tasks.fewshot.protonet import ProtoNet

from conftest import TINY, assert_user_error, read_json, run_in_process
from fewshot_files import write_miniimagenet, write_omniglot

FEW_STEPS = [o for o in TINY if not o.startswith("task.")]


@pytest.fixture
def float32_after():
    """build_task sets the process's default dtype (one process is one run); tests share a process."""
    yield
    torch.set_default_dtype(torch.float32)


@pytest.fixture(params=["vmap", "loop"])
def maml_float64(request):
    data = load()
    data = SplitData(data.name, *(Split(s.x.double(), s.y) for s in (data.train, data.val, data.test)), data.num_classes)
    torch.set_default_dtype(torch.float64)
    try:
        task = MAML(data, lambda in_shape, num_outputs: MLP(in_shape, num_outputs, [16]), torch.device("cpu"),
                    horizon=3, ways=5, shots=1, queries=3, inner_lr=0.4, learn_inner_lr=False, first_order=False,
                    anil=False, proximal=0.0, test_episodes=10, test_horizon=3, split_seed=0, batching=request.param)
        generator = torch.Generator().manual_seed(0)
        meta_params, problem = task.init_meta_params(generator), task.sample(generator, 4)
        e = problem.episodes  # episodic pools keep float32 pixels
        problem.episodes = Episodes(e.support_x.double(), e.support_y, e.query_x.double(), e.query_y)
        yield task, meta_params, problem
    finally:
        torch.set_default_dtype(torch.float32)


def test_batched_maml_equals_a_loop_over_tasks(maml_float64):
    """The vmapped meta-batch against the textbook: one task at a time, inner SGD steps with
    create_graph=True, query losses averaged, then the gradient of the initialisation."""
    task, meta_params, problem = maml_float64
    batched = Backprop(False).estimate(problem, meta_params, torch.Generator())[0]

    init = {name: value.detach().requires_grad_() for name, value in meta_params.items()}
    episodes, losses = problem.episodes, []
    for b in range(len(episodes.support_y)):
        params = dict(init)
        for _ in range(task.horizon):
            loss = F.cross_entropy(functional_call(task.net, params, (episodes.support_x[b],)), episodes.support_y[b])
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            params = {name: value - task.inner_lr * g for (name, value), g in zip(params.items(), grads)}
        losses.append(F.cross_entropy(functional_call(task.net, params, (episodes.query_x[b],)), episodes.query_y[b]))
    looped = torch.autograd.grad(torch.stack(losses).mean(), list(init.values()))
    for (name, expected) in zip(init, looped):
        torch.testing.assert_close(batched[name], expected, rtol=1e-10, atol=1e-12)


def test_tbptt_over_the_whole_horizon_is_maml(maml_float64):
    task, meta_params, problem = maml_float64
    exact = Backprop(False).estimate(problem, meta_params, torch.Generator())[0]
    truncated = TBPTT(task.horizon, False, online=False).estimate(problem, meta_params, torch.Generator())[0]
    for name in exact:
        torch.testing.assert_close(truncated[name], exact[name], rtol=1e-10, atol=1e-12)


def test_auto_batching_is_the_loop_for_conv_backbones_on_a_cpu_and_vmap_on_cuda(compose_config):
    cfg = compose_config("train", ["task=maml", "trainer.device=cpu"])
    assert cfg.task.batching.value == "auto"  # the default
    task, _, problem, _ = first_problem(cfg, torch.device("cpu"))
    assert task.batching == problem.batching == "vmap"  # an MLP: the loop's per-task overhead dominates
    conv, mlp = Conv4(in_shape=(3, 84, 84), num_outputs=5, width=4), MLP((1, 8, 8), 5, [16])
    assert resolved_batching(Batching.auto, torch.device("cpu"), conv) == "loop"
    assert resolved_batching(Batching.auto, torch.device("cuda"), conv) == "vmap"
    assert resolved_batching(Batching.auto, torch.device("cuda"), mlp) == "vmap"
    assert resolved_batching(Batching.vmap, torch.device("cpu"), conv) == "vmap"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_prototype_distances_are_cdist_squared(dtype):
    """The distances written out for forward mode equal what torch.cdist gave, to round-off (cdist
    takes its matrix-product path above 25 rows, so the two differ in the last bits)."""
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(75, 64, generator=generator, dtype=dtype)
    prototypes = torch.randn(5, 64, generator=generator, dtype=dtype)
    expected = torch.cdist(queries, prototypes) ** 2
    difference = (squared_distances(queries, prototypes) - expected).abs().max().item()
    print(f"{dtype}: max |difference| {difference:.3g} on distances of about {expected.mean().item():.0f}")
    assert difference <= 64 * torch.finfo(dtype).eps * expected.max().item()


def test_protonet_exact_forward_mode_is_backprop(compose_config, float32_after):
    """task=protonet estimator=forward (exact, one tangent per meta-parameter: a 4-unit
    embedding of digits, 260 of them) against backprop, in float64."""
    cfg = compose_config("train", ["task=protonet", "estimator=forward", "estimator.mode=exact", "backbone.hidden=[4]",
                                   "trainer.dtype=float64", "task.ways=3", "task.shots=2", "task.queries=2",
                                   "trainer.meta_batch=2", "trainer.device=cpu"])
    _, meta_params, problem, generator = first_problem(cfg, torch.device("cpu"))
    forward = build(cfg.estimator).estimate(problem, meta_params, generator)[0]
    exact = Backprop(False).estimate(problem, meta_params, generator)[0]
    difference = max((forward[name] - exact[name]).abs().max().item() for name in exact)
    largest = max(g.abs().max().item() for g in exact.values())
    print(f"max |forward − backprop| {difference:.3g}, max |backprop| {largest:.3g}")
    assert sum(value.numel() for value in meta_params.values()) == 260
    assert difference < 1e-8


def few_shot_task(name: str, data):
    """A tiny MAML or ProtoNet on `data` (3-way 1-shot, 1 query), evaluated on 6 episodes."""
    mlp = lambda in_shape, num_outputs: MLP(in_shape, num_outputs, [4])  # noqa: E731
    if name == "protonet":
        return ProtoNet(data, mlp, torch.device("cpu"), ways=3, shots=1, queries=1, test_episodes=6, split_seed=0,
                        head="proto", head_scale=1.0, ridge_lambda=50.0, learn_ridge_lambda=True, svm_c=0.1,
                        svm_iterations=50, label_smoothing=0.0)
    return MAML(data, mlp, torch.device("cpu"), horizon=1, ways=3, shots=1, queries=1, inner_lr=0.1,
                learn_inner_lr=False, first_order=False, anil=False, proximal=0.0, test_episodes=6, test_horizon=2,
                split_seed=0, batching="vmap")


def drawn_episodes(task, monkeypatch) -> list[tuple[str, Episodes]]:
    """Every (meta-split, episodes) the task samples from here on."""
    drawn, sample = [], task.source.sample

    def recording(split, count, generator):
        drawn.append((split, sample(split, count, generator)))
        return drawn[-1][1]

    monkeypatch.setattr(task.source, "sample", recording)
    return drawn


@pytest.mark.parametrize("name", ["maml", "protonet"])
def test_validation_draws_only_meta_val_classes(name, monkeypatch):
    """Every image of class c is the constant c (8 meta-train, 5 meta-val, 5 meta-test classes),
    so an episode's pixels name the classes it was drawn from: validate's are all meta-val
    classes, evaluate's all meta-test ones."""
    ids = {"train": range(0, 8), "val": range(8, 13), "test": range(13, 18)}
    data = make_few_shot_data("constant", *([torch.full((3, 1, 2, 2), float(c)) for c in ids[split]]
                                            for split in ("train", "val", "test")))
    task = few_shot_task(name, data)
    drawn = drawn_episodes(task, monkeypatch)
    meta_params = task.init_meta_params(torch.Generator().manual_seed(0))
    results = {**task.validate(meta_params, torch.Generator().manual_seed(1)),
               **task.evaluate(meta_params, torch.Generator().manual_seed(1))}
    assert set(results) == {"val_acc", "val_acc_ci95", "test_acc", "test_acc_ci95"}
    # Standardising is one affine map for every split: pixel value → class id.
    pixel = {round(pool.images[c].flatten()[0].item(), 5): ids[split][c]
             for split in ids for pool in [getattr(task.source.data, split)] for c in range(pool.num_classes)}
    seen = {"val": set(), "test": set()}
    for split, episodes in drawn:
        pixels = torch.cat([episodes.support_x.flatten(2)[..., 0], episodes.query_x.flatten(2)[..., 0]], 1)
        seen[split] |= {pixel[round(value, 5)] for value in pixels.flatten().tolist()}
    print(f"{name}: validate drew classes {sorted(seen['val'])}, evaluate {sorted(seen['test'])}")
    assert seen["val"] == set(ids["val"]) and seen["test"] == set(ids["test"])


def test_sinusoid_validation_has_tasks_of_its_own(monkeypatch):
    """Procedural tasks have no held-out set to split off: meta-val draws its own stream, so a
    generator in the same state gives validate and evaluate different sines."""
    task = few_shot_task("maml", load_sinusoid())
    drawn = drawn_episodes(task, monkeypatch)
    meta_params = task.init_meta_params(torch.Generator().manual_seed(0))
    validated = task.validate(meta_params, torch.Generator().manual_seed(1))
    evaluated = task.evaluate(meta_params, torch.Generator().manual_seed(1))
    assert set(validated) == {"val_mse", "val_mse_ci95"}
    assert {"test_mse", "test_mse_ci95", "pre_adapt_test_mse", "pre_adapt_test_mse_ci95"} == set(evaluated)
    (_, val), (_, test) = drawn
    assert not torch.isclose(val.support_x.flatten(), test.support_x.flatten()).any()
    again = task.validate(meta_params, torch.Generator().manual_seed(1))
    assert again == validated  # the same generator state, the same meta-val tasks


@pytest.mark.slow
def test_maml_sinusoid_adapts(tmp_path):
    """After a few hundred meta-steps, ten points and ten inner steps cut the error on a new
    sine well below the error of the initialisation itself, both with their 95% CI."""
    result = run_in_process(["train", "experiment=maml_sinusoid", "trainer.meta_steps=800", "task.test_episodes=300",
                             "trainer.progress=false", "logger=none", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["test_mse"] + summary["test_mse_ci95"] < 0.6 * (summary["pre_adapt_test_mse"] - summary["pre_adapt_test_mse_ci95"])
    assert (tmp_path / "run" / "sinusoid.png").exists()


@pytest.mark.parametrize("task", ["maml", "protonet"])
def test_digits_5way_1shot_is_far_above_chance(tmp_path, task):
    result = run_in_process(["train", f"task={task}", "estimator=backprop", "task.test_episodes=100", *FEW_STEPS,
                             "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["test_acc"] - summary["test_acc_ci95"] > 0.5  # chance is 0.2
    assert 0 < summary["test_acc_ci95"] < 0.1


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["task=maml", "task.ways=9"], ["9-way tasks need at least 9 classes", "lower task.ways"]),
        (["task=protonet", "task.queries=400"], ["need 401 examples of every class", "task.queries"]),
        (["task=protonet", "task.train_ways=30"], ["30-way tasks need at least 30 classes", "lower task.train_ways"]),
        (["task=protonet", "data=miniimagenet", "data.root=nowhere"], ["miniimagenet", "nowhere"]),
        (["task=protonet", "estimator=tbptt"], ["no inner loop to truncate", "use backprop"]),
        (["task=maml", "estimator=tbptt", "estimator.truncation=2", "task.horizon=4"],
         ["only through its first state", "estimator.truncation equal to task.horizon"]),
    ],
)
def test_few_shot_user_errors(tmp_path, overrides, fragments):
    defaults = ["estimator=backprop"] if "estimator=tbptt" not in overrides else []
    assert_user_error(run_in_process(["train", *defaults, *overrides, *FEW_STEPS], tmp_path), *fragments)


SHRUNK = ["trainer.meta_steps=2", "trainer.meta_batch=2", "trainer.eval_every=1", "task.test_episodes=4",
          "task.queries=1", "backbone.width=4", "trainer.progress=false", "logger=none"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["maml_miniimagenet_5w1s", "protonet_miniimagenet_5w1s"])
def test_miniimagenet_experiments_run_on_stand_in_files(tmp_path, experiment):
    """The published setups end to end, on 64/16/20 class folders of tiny JPEGs, shrunk to seconds."""
    write_miniimagenet(tmp_path / "mini")
    extra = ["task.horizon=1", "task.test_horizon=1"] if experiment.startswith("maml") else []
    result = run_in_process(["train", f"experiment={experiment}", f"data.root={tmp_path / 'mini'}",
                             "data.image_size=16", *SHRUNK, *extra, "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["data"] == "miniimagenet" and summary["steps"] == 2 and 0 <= summary["test_acc"] <= 1


def test_omniglot_experiment_runs_on_stand_in_files(tmp_path, monkeypatch, compose_config):
    """In process: torchvision checks the md5 of Omniglot's zips, which stand-ins cannot match."""
    import torchvision.datasets.omniglot

    from metaopt_cli.trainer import train

    write_omniglot(tmp_path / "omni")
    monkeypatch.setattr(torchvision.datasets.omniglot, "check_integrity",
                        lambda path, md5=None: Path(path).with_suffix("").is_dir())
    overrides = ["experiment=maml_omniglot_5w1s", f"data.root={tmp_path / 'omni'}", "data.image_size=16", *SHRUNK,
                 "task.test_horizon=1"]
    choices = dict(compose_config("train", overrides, hydra_node=True).hydra.runtime.choices)
    summary = train(compose_config("train", overrides), choices, tmp_path, "omniglot", "test")
    assert summary["data"] == "omniglot" and summary["steps"] == 2 and 0 <= summary["test_acc"] <= 1


@pytest.mark.slow
def test_eval_reevaluates_a_maml_checkpoint_with_more_episodes(tmp_path):
    """`eval run=<dir> task.test_episodes=…` composes against the run's own task (maml), not the
    default one, so the task's keys can be overridden."""
    trained = run_in_process(["train", "task=maml", "estimator=backprop", "task.test_episodes=10", *FEW_STEPS,
                              "hydra.run.dir=run"], tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = run_in_process(["eval", f"run={tmp_path / 'run'}", "task.test_episodes=40", "hydra.run.dir=again"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report, summary = read_json(tmp_path / "again" / "eval.json"), read_json(tmp_path / "run" / "summary.json")
    assert report["task"] == "maml" and 0 < report["test_acc"] <= 1
    assert report["test_acc_ci95"] < summary["test_acc_ci95"]  # four times the episodes: a narrower interval


def test_protonet_trains_on_episodes_of_its_own_shape(compose_config):
    """task.train_ways/shots/queries shape meta-training's episodes (Snell et al.'s 30-way, MetaOptNet's
    15-shot) while meta-val and meta-test keep task.ways/shots/queries; an unset one follows them."""
    cfg = compose_config("train", ["task=protonet", "backbone.hidden=[4]", "task.ways=3", "task.shots=1",
                                   "task.queries=2", "task.train_ways=6", "task.train_shots=4", "trainer.meta_batch=2",
                                   "trainer.device=cpu"])
    task, _, problem, generator = first_problem(cfg, torch.device("cpu"))
    assert problem.ways == 6
    assert problem.episodes.support_y.shape == (2, 6 * 4) and problem.episodes.query_y.shape == (2, 6 * 2)
    test = task.source.sample("test", 2, generator)
    assert test.support_y.shape == (2, 3 * 1) and test.query_y.shape == (2, 3 * 2)
