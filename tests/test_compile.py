"""trainer.compile: the compiled inner steps give eager's meta-gradient, compile during the first
meta-step only, run eagerly with one warning where torch.compile cannot take them, and the mode
this version cannot run is refused at start-up."""
import json
import logging

import pytest
import torch
from torch._dynamo.utils import counters

from metaopt_cli import compiled
from metaopt_cli.build import build, build_task, first_problem
from metaopt_cli.config.commands import Compile
from metaopt_cli.estimators.forward import Forward
from metaopt_cli.estimators.tbptt import TBPTT

from conftest import TINY, assert_user_error, run_in_process
from problems import QuadraticProblem

CPU = torch.device("cpu")
TASKS = {
    "distill": ["task=distill", "task.horizon=4", "task.real_batch=32"],
    "hpo": ["task=hpo", "task.horizon=4", "task.batch_size=16", "task.val_batch=32"],
}
# σ = 1: an ES estimate is a finite difference of two losses, which loses digits as σ shrinks. A
# loss's float32 round-off (~1e-7 of it, whichever code computes it: inductor fuses and orders sums
# otherwise) becomes ~1e-7·L/(σ‖∇L‖) of the estimate. Measured on these problems, compiled and eager
# each differ from the same draws in float64 by as much as from each other: up to 2e-4 at σ = 0.01,
# 2e-5 at σ = 0.1, 1e-6 at σ = 1, which leaves the 1e-5 bound a margin.
ESTIMATORS = {
    "es": ["estimator=es", "estimator.particles=2", "estimator.sigma=1.0"],
    "pes": ["estimator=pes", "estimator.particles=2", "estimator.sigma=1.0", "estimator.truncation=2"],
    "tbptt": ["estimator=tbptt", "estimator.truncation=2"],
}
CASES = [(task, estimator) for task in TASKS for estimator in ESTIMATORS]


@pytest.fixture(autouse=True)
def _fresh():
    """Each test compiles for itself, and leaves torch's defaults as it found them."""
    compiled.start(Compile.compile)
    yield
    compiled.start(Compile.compile)
    torch.set_default_dtype(torch.float32)


@pytest.fixture
def aot_eager(monkeypatch):
    """What dynamo decides (graphs, guards, recompilations), without inductor's minutes of code
    generation on a small CPU: aot_eager traces forward and backward as inductor does."""
    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    compiled.start(Compile.compile)


def graphs() -> int:
    return counters["stats"]["unique_graphs"]


def estimate(cfg, mode: Compile):
    """The meta-gradient of the first meta-step of `metaopt train` with this config."""
    _, meta_params, problem, generator = first_problem(cfg, CPU)
    estimator = build(cfg.estimator)
    with compiled.compiling(mode):
        return estimator.estimate(problem, {n: v.requires_grad_() for n, v in meta_params.items()}, generator)[0]


def relative_error(found: dict, reference: dict) -> float:
    difference = torch.cat([(found[name] - value).flatten() for name, value in reference.items()])
    return float(difference.norm() / torch.cat([value.flatten() for value in reference.values()]).norm())


@pytest.mark.parametrize(("task", "estimator"), [
    # es on distill: the default suite's one run of inductor itself, the rest are slow
    pytest.param(task, estimator, marks=[] if (task, estimator) == ("distill", "es") else [pytest.mark.slow])
    for task, estimator in CASES])
def test_compiled_meta_gradient_matches_eager(compose_config, caplog, task, estimator):
    """Inductor, torch.compile's default backend, against eager, in float32."""
    cfg = compose_config("train", [*TASKS[task], *ESTIMATORS[estimator], "trainer.meta_batch=2", "logger=none"])
    eager = estimate(cfg, Compile.none)
    before = graphs()
    with caplog.at_level(logging.WARNING, logger=compiled.__name__):
        found = estimate(cfg, Compile.compile)
    assert graphs() > before, "nothing was compiled"
    assert not caplog.records, caplog.text  # no step fell back to eager
    error = relative_error(found, eager)
    print(f"{task} {estimator}: relative error of the compiled meta-gradient {error:.2e}")
    assert error <= 1e-5


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_nothing_compiles_after_the_first_meta_step(compose_config, aot_eager, estimator):
    """A new problem each meta-step (new data tensors, new initialisations) and every step t reuse
    the first meta-step's graphs: HPO's step reads its minibatch and learning rate at t."""
    cfg = compose_config("train", [*TASKS["hpo"], *ESTIMATORS[estimator], "trainer.meta_batch=2", "logger=none"])
    torch.manual_seed(0)
    task = build_task(cfg, CPU)
    estimator = build(cfg.estimator)
    generator = torch.Generator().manual_seed(0)
    meta_params = {name: value.requires_grad_() for name, value in task.init_meta_params(generator).items()}
    before, after = graphs(), []
    for _ in range(4):
        with compiled.compiling(Compile.compile):
            estimator.estimate(task.sample(generator, 2), meta_params, generator)
        after.append(graphs() - before)
    assert after[0] > 0 and after == [after[0]] * 4, after


def test_a_compiled_run_trains_as_an_eager_one(tmp_path, aot_eager):
    """Through `metaopt train`: the same meta-losses, with graphs compiled during the run (its
    first meta-step runs eagerly on a CPU, where its peak memory is measured op by op)."""
    args = ["train", *TINY, *TASKS["distill"], *ESTIMATORS["es"], "trainer.meta_steps=3"]
    result = run_in_process([*args, "hydra.run.dir=eager"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    before = graphs()
    result = run_in_process([*args, "trainer.compile=compile", "hydra.run.dir=compiled"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert graphs() > before
    losses = {run: [record["meta_loss"] for record in _records(tmp_path / run)] for run in ("eager", "compiled")}
    assert len(losses["eager"]) == 3
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-6)


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


class BranchingProblem(QuadraticProblem):
    """A step that branches in Python on a tensor's value: a graph break, which fullgraph refuses."""

    def step(self, meta_params, state, t):
        state = super().step(meta_params, state, t)
        return state if state["w"].sum() < 1e9 else {"w": state["w"] / 2}


def test_a_step_torch_compile_cannot_take_runs_eagerly_with_one_warning(caplog, aot_eager):
    problem = BranchingProblem.random(horizon=4)
    meta_params = {"theta": torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))}
    estimator = TBPTT(truncation=2, random_window=False, online=False)
    eager = estimator.estimate(problem, meta_params, torch.Generator())[0]
    before = graphs()
    with caplog.at_level(logging.WARNING, logger=compiled.__name__), compiled.compiling(Compile.compile):
        for _ in range(2):
            found = estimator.estimate(problem, meta_params, torch.Generator())[0]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "BranchingProblem.step runs eagerly" in warnings[0], warnings
    assert graphs() > before  # the meta-loss terms still compile
    torch.testing.assert_close(found, eager, rtol=1e-12, atol=0)


def test_steps_inside_forward_modes_jvp_run_eagerly_with_one_warning(caplog, aot_eager):
    problem = QuadraticProblem.random(horizon=3)
    meta_params = {"theta": torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))}
    estimator = Forward(mode="exact", directions=1, max_tangents=100, chunk=5)
    eager = estimator.estimate(problem, meta_params, torch.Generator())[0]
    before = graphs()
    with caplog.at_level(logging.WARNING, logger=compiled.__name__), compiled.compiling(Compile.compile):
        found = estimator.estimate(problem, meta_params, torch.Generator())[0]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "pytorch/pytorch#128711" in warnings[0], warnings
    assert graphs() == before
    torch.testing.assert_close(found, eager, rtol=0, atol=0)


def test_cudagraph_on_a_cpu_is_refused_before_any_run_folder(tmp_path):
    result = run_in_process(["train", *TINY, "trainer.device=cpu", "trainer.compile=cudagraph"], tmp_path)
    assert_user_error(result, "trainer.compile=cudagraph captures CUDA graphs and needs a CUDA device: "
                              "use trainer.compile=compile")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_compile_mode_is_refused(tmp_path):
    result = run_in_process(["train", *TINY, "trainer.compile=jit"], tmp_path)
    assert_user_error(result, "trainer.compile")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cudagraph_on_cuda_is_not_available_yet(tmp_path):
    result = run_in_process(["train", *TINY, "trainer.device=cuda", "trainer.compile=cudagraph"], tmp_path)
    assert_user_error(result, "trainer.compile=cudagraph", "not available in this version yet",
                      "use trainer.compile=compile")
    assert list(tmp_path.iterdir()) == []
