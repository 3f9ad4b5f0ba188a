"""Bad inputs and faults, one row each, run through the CLI's entry point: every one ends in exactly
one `error:` line on stderr, status 2, no traceback, and well within its time limit (no hang).

To add a case, add a row: an id, the command line, fragments the error line must hold, and, where the
case needs files, a setup that writes them into the test's folder (the command runs there).
"""
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import assert_user_error, run_in_process, scaled_timeout
from fewshot_files import write_miniimagenet
from torchvision_files import write_mnist

# Small enough that a command which wrongly starts training still ends in seconds.
DISTILL = ["estimator=backprop", "task.horizon=2", "task.eval_models=2", "task.eval_steps=2", "task.eval_lrs=[0.1]",
           "trainer.meta_steps=1"]
HPO = ["task=hpo", "estimator=backprop", "task.horizon=2", "task.eval_seeds=2", "task.random_search_trials=2",
       "trainer.meta_steps=1"]
MNIST = [*HPO, "data=mnist", "data.root=data", "data.val_size=20"]
MAML_SINUSOID = ["experiment=maml_sinusoid", "trainer.meta_steps=1", "task.test_episodes=4", "task.test_horizon=1"]
# Every URL torchvision tries goes through a proxy on a closed local port: a download fails as
# it does without a network, whether or not the machine has one.
NO_NETWORK = {name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}


@dataclass
class Case:
    id: str
    args: list[str]
    fragments: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    env: dict | None = None
    needs_run: bool = False  # a finished tiny run copied to ./run first (the table's slow part)


def mnist_with(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """Stand-in MNIST files under ./data, then `damage` applied to its raw folder."""

    def setup(cwd: Path) -> None:
        write_mnist(cwd / "data", "MNIST", n_train=80, n_test=20)
        damage(cwd / "data" / "MNIST" / "raw")

    return setup


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def file_made_a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def corrupt_miniimagenet_image(cwd: Path) -> None:
    write_miniimagenet(cwd / "mini")
    next(iter(sorted((cwd / "mini" / "train").glob("*/*.jpg")))).write_bytes(b"not a jpeg")


CASES = [
    # Backbone sizes (backbones/*): refused with the knob's name before torch sees a negative dimension.
    Case("mlp-hidden-zero", ["train", *DISTILL, "backbone.hidden=[0]"], ("backbone.hidden", "[0]")),
    Case("mlp-hidden-negative", ["train", *DISTILL, "backbone.hidden=[16,-3]"], ("backbone.hidden",)),
    Case("conv4-width-zero", ["train", *DISTILL, "backbone=conv4", "backbone.width=0"], ("backbone.width",)),
    Case("convnet-depth-zero", ["train", *DISTILL, "backbone=convnet", "backbone.depth=0"], ("backbone.depth",)),
    Case("convnet-pooling-unknown", ["train", *DISTILL, "backbone=convnet", "backbone.pooling=min"],
         ("backbone.pooling", "avg")),
    Case("resnet12-width-zero", ["train", *DISTILL, "backbone=resnet12", "backbone.widths=[8,0,8,8]"],
         ("backbone.widths",)),
    Case("resnet12-no-widths", ["train", *DISTILL, "backbone=resnet12", "backbone.widths=[]"], ("backbone.widths",)),
    Case("wrn-widen-zero", ["train", *DISTILL, "backbone=wrn28_10", "backbone.widen=0"], ("backbone.widen",)),
    Case("wrn-depth-negative", ["train", *DISTILL, "backbone=wrn28_10", "backbone.depth=-2"], ("backbone.depth",)),
    Case("wrn-dropout-one", ["train", *DISTILL, "backbone=wrn28_10", "backbone.dropout=1.0"], ("backbone.dropout",)),
    Case("wrn-dropout-negative", ["train", *DISTILL, "backbone=wrn28_10", "backbone.dropout=-0.1"],
         ("backbone.dropout",)),
    # Trainer values, checked at start-up (compat.check_trainer, build.pick_device).
    Case("device-mps", ["train", *DISTILL, "trainer.device=mps"], ("trainer.device=mps", "auto")),
    Case("device-meta", ["train", *DISTILL, "trainer.device=meta"], ("trainer.device",)),
    Case("seed-negative", ["train", *DISTILL, "trainer.seed=-1"], ("trainer.seed", "-1")),
    Case("seed-2**64", ["train", *DISTILL, f"trainer.seed={2**64}"], ("trainer.seed",)),
    Case("seed-in-a-sweep", ["train", "-m", *DISTILL, "trainer.seed=0,-1"], ("trainer.seed", "-1")),
    Case("outer-lr-inf", ["train", *DISTILL, "trainer.outer_lr=inf"], ("trainer.outer_lr", "inf")),
    Case("outer-lr-nan", ["train", *DISTILL, "trainer.outer_lr=nan"], ("trainer.outer_lr", "nan")),
    # Evaluation settings that make a statistic meaningless or a grid senseless (tasks/*).
    Case("distill-eval-lr-negative", ["train", *DISTILL, "task.eval_lrs=[-1.0]"], ("task.eval_lrs",)),
    Case("distill-eval-lr-nan", ["train", *DISTILL, "task.eval_lrs=[nan]"], ("task.eval_lrs",)),
    Case("distill-eval-lrs-empty", ["train", *DISTILL, "task.eval_lrs=[]"], ("task.eval_lrs",)),
    Case("distill-one-eval-model", ["train", *DISTILL, "task.eval_models=1"], ("task.eval_models", "at least 2")),
    Case("distill-inner-lr-inf", ["train", *DISTILL, "task.inner_lr=inf"], ("task.inner_lr",)),
    Case("hpo-one-eval-seed", ["train", *HPO, "task.eval_seeds=1"], ("task.eval_seeds", "at least 2")),
    Case("hpo-weight-decay-nan", ["train", *HPO, "task.weight_decay=nan"], ("task.weight_decay",)),
    Case("lopt-baseline-lr-nan", ["train", "task=learned_opt", "estimator=backprop", "task.horizon=2",
                                  "trainer.meta_steps=1", "task.adam_lrs=[nan]"], ("task.adam_lrs",)),
    # One test episode gives no confidence interval (tasks/fewshot/losses.py).
    Case("maml-one-test-episode", ["train", *MAML_SINUSOID, "task.test_episodes=1"], ("task.test_episodes",)),
    # Data files that are corrupt, in the wrong place, or not downloadable (data/*).
    Case("mnist-truncated-images", ["train", *MNIST],
         ("cannot read mnist", "truncated or corrupt"),
         setup=mnist_with(lambda raw: truncate(raw / "train-images-idx3-ubyte"))),
    Case("mnist-empty-labels", ["train", *MNIST], ("cannot read mnist", "data.download=true"),
         setup=mnist_with(lambda raw: (raw / "train-labels-idx1-ubyte").write_bytes(b""))),
    Case("mnist-folder-for-a-file", ["train", *MNIST], ("mnist not found", "MNIST/raw"),
         setup=mnist_with(lambda raw: file_made_a_folder(raw / "t10k-labels-idx1-ubyte"))),
    Case("mnist-download-without-network", ["train", *HPO, "data=mnist", "data.root=data", "data.download=true"],
         ("could not fetch mnist", "MNIST/raw", "data.download=false"), env=NO_NETWORK),
    Case("cifar10-download-without-network", ["train", *HPO, "data=cifar10", "data.root=data", "data.download=true"],
         ("could not fetch cifar10", "cifar-10-batches-py"), env=NO_NETWORK),
    Case("miniimagenet-corrupt-image", ["train", "task=protonet", "estimator=backprop", "data=miniimagenet",
                                        "data.root=mini", "data.image_size=16", "backbone=conv4", "backbone.width=4",
                                        "trainer.meta_steps=1", "task.test_episodes=2"],
         ("cannot read the image", ".jpg"), setup=corrupt_miniimagenet_image),
    # Memory: allocations far beyond any machine fail at once, naming what sizes memory (errors.py).
    Case("backbone-too-large-for-memory", ["train", *DISTILL, f"backbone.hidden=[{10**11}]"],
         ("out of CPU memory", "trainer.meta_batch", "task.horizon")),
    Case("horizon-too-long-for-memory", ["train", *HPO, "task.schedule=per_step", f"task.horizon={10**11}",
                                         f"task.decay_steps={10**11}"], ("out of CPU memory", "task.horizon")),
    # A task given data it cannot learn from (compat.py, from the data kinds tasks declare).
    Case("distill-on-sinusoid", ["train", *DISTILL, "data=sinusoid"], ("task=distill", "data=sinusoid")),
    Case("hpo-on-sinusoid", ["train", *HPO, "data=sinusoid"], ("task=hpo", "data=sinusoid")),
    # Estimator values (estimators/*).
    Case("implicit-damping-nan", ["train", *MAML_SINUSOID, "estimator=implicit", "estimator.damping=nan"],
         ("estimator.damping",)),
    # Run directories and Hydra's own flags (cli.py, run_config.py, startup.py).
    Case("eval-without-run", ["eval"], ("run=",)),
    Case("resume-empty", ["train", "resume=", *DISTILL], ("resume",)),
    Case("resume-truncated-checkpoint", ["train", "resume=run", "trainer.meta_steps=2"], ("checkpoint.pt",),
         setup=lambda cwd: truncate(cwd / "run" / "checkpoint.pt"), needs_run=True),
    Case("eval-truncated-checkpoint", ["eval", "run=run"], ("checkpoint.pt",),
         setup=lambda cwd: truncate(cwd / "run" / "checkpoint.pt"), needs_run=True),
    # config.yaml is for people and never read back: what resume composes from is hydra.yaml's choices.
    Case("resume-truncated-hydra-yaml", ["train", "resume=run", "trainer.meta_steps=2"], ("hydra.yaml",),
         setup=lambda cwd: truncate(cwd / "run" / ".hydra" / "hydra.yaml"), needs_run=True),
    Case("run-dir-name-too-long", ["train", *DISTILL, "hydra.run.dir=" + "x" * 300], ("hydra.run.dir",)),
    Case("unknown-key-added", ["train", *DISTILL, "+trainer.foo=1"], ("trainer.foo",)),
    Case("multirun-with-cfg", ["train", "-m", "--cfg", "job"], ("--cfg",)),
    Case("resume-nowhere", ["train", "resume=nowhere"], ("not a metaopt run directory",)),
    Case("resume-swept", ["train", "-m", "resume=a,b"], ("cannot be swept",)),
    Case("added-key-misspelt", ["train", *DISTILL, "+trainer.meta_step=1"], ("did you mean 'trainer.meta_steps'",)),
    Case("run-dir-under-a-file", ["train", *DISTILL, "hydra.run.dir=afile/run"], ("is a file",),
         setup=lambda cwd: (cwd / "afile").write_text("")),
    Case("resume-elsewhere", ["train", "resume=run", "hydra.run.dir=elsewhere"], ("leave hydra.run.dir out",),
         needs_run=True),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One tiny finished run, for the cases that damage a run directory (each gets a copy)."""
    cwd = tmp_path_factory.mktemp("finished")
    result = run_in_process(["train", *DISTILL, "trainer.meta_steps=2", "logger=none", "trainer.progress=false",
                             "hydra.run.dir=run"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "run"


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.needs_run else [])
                                  for case in CASES])
def test_bad_input_ends_in_one_error_line(case: Case, tmp_path: Path, request):
    if case.needs_run:
        shutil.copytree(request.getfixturevalue("finished_run"), tmp_path / "run")
    if case.setup is not None:
        case.setup(tmp_path)
    extra = [] if case.args[0] == "eval" or "--cfg" in case.args else ["logger=none", "trainer.progress=false"]
    result = run_in_process([*case.args, *extra], tmp_path, timeout=60, env=case.env)
    assert_user_error(result, *case.fragments)


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def test_gpu_out_of_memory_is_one_line_naming_the_knobs(capsys):
    """The GPU's allocator error, as Hydra's instantiate wraps it, without a GPU to exhaust."""
    import torch
    from hydra.errors import InstantiationException

    from metaopt_cli.errors import reports_user_errors

    @reports_user_errors
    def command():
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total "
                                         "capacity of 79.19 GiB of which 3.12 GiB is free.")
        except torch.OutOfMemoryError as error:
            raise InstantiationException("Error in call to target") from error

    with pytest.raises(SystemExit) as exit_:
        command()
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: out of GPU memory allocating 20.00 GiB"), lines
    assert "trainer.meta_batch" in lines[0] and "estimator.truncation" in lines[0]


def test_an_error_that_is_not_about_memory_goes_through():
    from metaopt_cli.errors import reports_user_errors

    @reports_user_errors
    def command():
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        command()


def test_run_time_limits_scale_with_the_environment(monkeypatch):
    monkeypatch.delenv("METAOPT_TEST_TIMEOUT_SCALE", raising=False)
    assert scaled_timeout(60) == 60
    monkeypatch.setenv("METAOPT_TEST_TIMEOUT_SCALE", "2.5")
    assert scaled_timeout(60) == 150
    monkeypatch.setenv("METAOPT_TEST_TIMEOUT_SCALE", "0")
    with pytest.raises(ValueError, match="METAOPT_TEST_TIMEOUT_SCALE"):
        scaled_timeout(60)
