"""trainer.precision=fp32|tf32|bf16: bf16 autocasts the inner loop and accumulates the
meta-gradient in float32; gradcheck shows what each precision costs; a precision the device or
trainer.dtype cannot run is one error line."""
import json
import math

import pytest
import torch

from metaopt_cli.build import build, first_problem
from metaopt_cli.checkpoint import load_checkpoint
from metaopt_cli.config.commands import Precision
from metaopt_cli.config.store import options
from metaopt_cli.errors import UserError
from metaopt_cli.precision import check_precision, matmuls, problem_at, supported

from conftest import TINY, assert_user_error, read_json, run_in_process, train_whole_and_resumed

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CPU = torch.device("cpu")

# A task each estimator serves, in a size that takes well under a second.
SMALL = ["trainer.meta_batch=2", "trainer.device=cpu", "task.horizon=10"]  # estimator.truncation: 10
DISTILL = ["task=distill", "task.real_batch=64", *SMALL]
MAML = ["task=maml", "data=digits", "backbone.hidden=[16]", "task.ways=3", "task.queries=2", "task.proximal=1.0",
        *SMALL]
TASK_OF = {"implicit": MAML}  # distill's inner loop has no inner objective


@pytest.fixture(autouse=True)
def _float32_after():
    """build_task sets the process's default dtype; tests share a process."""
    yield
    torch.set_default_dtype(torch.float32)


def first_meta_loss(run_dir) -> float:
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["meta_loss"]


def test_bf16_trains_on_the_cpu_with_float32_meta_parameters(tmp_path):
    runs = {}
    for kind in ("fp32", "bf16"):
        result = run_in_process(["train", *TINY, "trainer.meta_steps=2", f"trainer.precision={kind}",
                                 f"hydra.run.dir={kind}"], tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[kind] = tmp_path / kind
    summary = read_json(runs["bf16"] / "summary.json")
    assert summary["steps"] == 2
    figures = [value for value in summary.values() if isinstance(value, float)]
    assert figures and all(math.isfinite(value) for value in figures)
    assert {value.dtype for value in load_checkpoint(runs["bf16"])["meta_params"].values()} == {torch.float32}
    # The trainer's problems really run in bfloat16: the first meta-loss moves in the 3rd or 4th digit.
    fp32, bf16 = first_meta_loss(runs["fp32"]), first_meta_loss(runs["bf16"])
    assert fp32 != bf16 and bf16 == pytest.approx(fp32, rel=1e-2)


def test_a_resumed_online_bf16_run_samples_its_problems_in_bf16_again(tmp_path):
    """Resume samples an online run's problem again from the task: in bf16 too, or the
    resumed run would leave the uninterrupted one."""
    online = [*TINY, "task.horizon=4", "estimator.truncation=2", "estimator.online=true", "trainer.precision=bf16"]
    whole, parts = train_whole_and_resumed(tmp_path, online, stop_at=3, steps=5)
    for name, value in load_checkpoint(whole)["meta_params"].items():
        assert torch.equal(value, load_checkpoint(parts)["meta_params"][name]), name


@pytest.mark.parametrize("estimator", options("estimator"))
def test_bf16_meta_gradient_is_float32_and_close_to_fp32s_but_not_equal(compose_config, estimator):
    cfg = compose_config("train", [*TASK_OF.get(estimator, DISTILL), f"estimator={estimator}"])
    _, meta_params, problem, _ = first_problem(cfg, CPU)
    grads = {}
    for kind in ("fp32", "bf16"):
        with matmuls(kind):  # the same draws (ES's noise, forward's tangents) at both precisions
            grads[kind], metrics = build(cfg.estimator).estimate(problem_at(problem, kind), meta_params,
                                                                  torch.Generator().manual_seed(1))
    assert {value.dtype for value in grads["bf16"].values()} == {torch.float32}
    assert all(torch.as_tensor(value).dtype == torch.float32 and torch.isfinite(torch.as_tensor(value))
               for value in metrics.values())
    exact, low = (torch.cat([g[name].flatten() for name in meta_params]) for g in (grads["fp32"], grads["bf16"]))
    assert torch.isfinite(low).all()
    relative = ((low - exact).norm() / exact.norm()).item()
    # Measured here: about 2e-3 for the exact estimators; ES's and PES's finite differences of
    # losses 0.055, and implicit's ill-conditioned solve 0.07, amplify bfloat16's 8-bit mantissa more.
    assert 0 < relative < 0.15, relative
    assert torch.nn.functional.cosine_similarity(low, exact, dim=0) > 0.99


def test_a_bf16_inner_loop_hands_back_float32_and_keeps_the_problems_capabilities(compose_config):
    cfg = compose_config("train", [*DISTILL, "estimator=backprop"])
    _, meta_params, problem, _ = first_problem(cfg, CPU)
    low = problem_at(problem, "bf16")
    state = low.step(meta_params, low.init(meta_params), 0)
    assert {value.dtype for value in state.values() if value.is_floating_point()} == {torch.float32}
    assert low.meta_loss(meta_params, state).dtype == torch.float32
    assert low.horizon == problem.horizon and not hasattr(low, "inner_objective")
    # What ranks and estimator.stagger split off runs in bf16 too.
    part, plain = low.select(range(1)), problem.select(range(1))
    assert part.meta_batch == 1
    loss = part.meta_loss(meta_params, part.init(meta_params))
    assert loss.dtype == torch.float32 and loss != plain.meta_loss(meta_params, plain.init(meta_params))


def test_gradcheck_prints_what_bf16_costs(tmp_path):
    result = run_in_process(["gradcheck", *TINY, "task.horizon=4", "gradcheck.samples=1", "hydra.run.dir=run"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_json(tmp_path / "run" / "gradcheck.json")
    estimators, precisions = rows[:1], rows[1:]
    assert estimators[0]["estimator"] == "tbptt" and estimators[0]["precision"] == "fp32"
    # The default: every precision this CPU runs, the exact reference at each against fp32's.
    assert [row["precision"] for row in precisions] == ["fp32", "bf16"]
    assert all(row["estimator"] == row["reference"] == "backprop" and row["samples"] == 1 for row in precisions)
    fp32, bf16 = precisions
    assert fp32["rel_error"] == 0 and fp32["cosine"] == pytest.approx(1)
    assert 0 < bf16["rel_error"] < 0.05 and bf16["cosine"] > 0.999
    line = next(line for line in result.stdout.splitlines() if line.startswith("bf16 "))
    assert f"{bf16['rel_error']:.3e}" in line


def test_gradcheck_runs_the_estimators_at_trainer_precision(tmp_path):
    result = run_in_process(["gradcheck", *TINY, "task.horizon=4", "gradcheck.samples=1", "trainer.precision=bf16",
                             "gradcheck.estimators=[backprop]", "gradcheck.precisions=[]", "hydra.run.dir=run"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [row] = read_json(tmp_path / "run" / "gradcheck.json")
    assert row["precision"] == "bf16" and 0 < row["rel_error"] < 0.05
    assert "each estimator in bf16 against backprop in fp32" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "trainer.precision=tf32"], ["trainer.precision=tf32", "CUDA", "use trainer.precision=fp32 or bf16"]),
        (["train", "trainer.precision=bf16", "trainer.dtype=float64"],
         ["trainer.precision=bf16", "trainer.dtype=float64", "trainer.dtype=float32"]),
        (["train", "trainer.precision=fp16"], ["trainer.precision", "fp32, tf32, bf16"]),
        (["gradcheck", "gradcheck.precisions=[bf16,tf32]"], ["gradcheck.precisions=tf32", "CUDA"]),
    ],
    ids=["tf32-on-cpu", "bf16-in-float64", "unknown", "gradcheck-tf32-on-cpu"],
)
def test_a_precision_that_cannot_run_is_one_error_line_before_any_run_folder(tmp_path, args, fragments):
    assert_user_error(run_in_process([*args, *TINY, "trainer.device=cpu"], tmp_path), *fragments)
    assert not (tmp_path / "outputs").exists()


def test_float64_runs_fp32_alone_and_gradcheck_compares_no_precision(tmp_path):
    result = run_in_process(["gradcheck", *TINY, "task.horizon=4", "gradcheck.samples=1", "trainer.dtype=float64",
                             "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["precision"] for row in read_json(tmp_path / "run" / "gradcheck.json")] == ["fp32"]
    assert "at each precision" not in result.stdout


def fake_gpu(monkeypatch, capability: tuple[int, int], bf16: bool) -> torch.device:
    """A CUDA device of the given compute capability, as the checks see it, on any machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-16GB")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16 or including_emulation)
    return torch.device("cuda")


def test_a_gpu_without_bf16_refuses_bf16_and_tf32(monkeypatch):
    """bf16 on a V100 would be emulated (torch.cuda.is_bf16_supported() says True by default),
    slower than fp32, and TF32 does not exist there: both refused, saying which GPU."""
    gpu = fake_gpu(monkeypatch, (7, 0), bf16=False)
    assert supported(gpu) == [Precision.fp32]
    for kind in ("bf16", "tf32"):
        with pytest.raises(UserError, match=rf"trainer.precision={kind} needs .* which Tesla V100-SXM2-16GB \(7.0\) "
                                            r"lacks: use trainer.precision=fp32$"):
            check_precision(kind, "float32", gpu)


def test_an_ampere_gpu_runs_every_precision(monkeypatch):
    gpu = fake_gpu(monkeypatch, (8, 0), bf16=True)
    assert supported(gpu) == [Precision.fp32, Precision.tf32, Precision.bf16]
    for kind in Precision:
        check_precision(kind, "float32", gpu)


def test_the_cpu_runs_fp32_and_bf16():
    assert supported(CPU) == [Precision.fp32, Precision.bf16]


def test_matmuls_sets_and_restores_torchs_flags():
    saved = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    with matmuls("tf32"):
        assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == ("high", True)
    with matmuls(Precision.bf16):  # bf16's float32 part (the estimator's own sums) is full float32
        assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == ("highest", False)
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == saved


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("kind", ["tf32", "bf16"])
def test_tf32_and_bf16_train_on_cuda(tmp_path, kind):
    if Precision(kind) not in supported(torch.device("cuda")):
        pytest.skip(f"this GPU lacks {kind}")
    result = run_in_process(["train", *TINY, "trainer.device=cuda", f"trainer.precision={kind}", "hydra.run.dir=run"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["device"].startswith("cuda")
    assert all(math.isfinite(value) for value in summary.values() if isinstance(value, float))
    assert {value.dtype for value in load_checkpoint(tmp_path / "run")["meta_params"].values()} == {torch.float32}
