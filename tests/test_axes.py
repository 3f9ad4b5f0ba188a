"""Every supported (task, estimator) pair and every conf/experiment/*.yaml runs end to end on tiny
settings; every unsupported pair is refused at start-up with one `error:` line.

In process (compose + metaopt_cli.trainer.train), because a subprocess per case would cost seconds
of start-up each. The lists come from conf/ and the compatibility matrix, so a new task, estimator or
experiment is covered without editing this file; only its tiny settings need a line below.
"""
import math
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from metaopt_cli.compat import why_unsupported
from metaopt_cli.startup import check_command_line
from metaopt_cli.trainer import train

from conftest import run_in_process
from fewshot_files import write_miniimagenet, write_omniglot
from torchvision_files import write_mnist

CONF = Path(__file__).resolve().parents[1] / "conf"
TASKS = sorted(path.stem for path in (CONF / "task").glob("*.yaml"))
ESTIMATORS = sorted(path.stem for path in (CONF / "estimator").glob("*.yaml"))
EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))

RUN = ["trainer.meta_steps=2", "trainer.meta_batch=2", "trainer.progress=false", "logger=none"]
# Each option's settings that shrink a run to a second or so, evaluation included.
TASK_TINY = {
    "distill": ["task.horizon=4", "task.images_per_class=1", "task.real_batch=32", "task.eval_models=2",
                "task.eval_steps=2", "task.eval_lrs=[0.1]"],
    "hpo": ["task.horizon=4", "task.decay_steps=4", "task.batch_size=16", "task.val_batch=32", "task.eval_seeds=2",
            "task.random_search_trials=2"],
    "influence": ["task.horizon=8"],
    "learned_opt": ["task.horizon=4", "task.hidden=4", "task.batch_size=16", "task.scored_batch_size=32",
                    "task.test_horizon=2", "task.test_seeds=1", "task.adam_lrs=[0.01]", "task.sgd_lrs=[0.1]"],
    "maml": ["task.horizon=2", "task.shots=1", "task.queries=1", "task.test_episodes=4", "task.test_horizon=1"],
    "protonet": ["task.shots=1", "task.queries=1", "task.test_episodes=4", "task.train_ways=null", "task.train_shots=null",
                 "task.train_queries=null"],
    "nas": ["task.horizon=4", "task.channels=4", "task.nodes=2", "task.batch_size=16", "task.val_batch=16",
            "task.eval_steps=2", "task.eval_seeds=2", "task.random_archs=1"],
}
ESTIMATOR_TINY = {
    "backprop": [],
    "tbptt": ["estimator.truncation=2"],
    "pes": ["estimator.truncation=2", "estimator.particles=2"],
    "es": ["estimator.particles=2"],
    "implicit": ["estimator.iterations=2"],
    "forward": ["estimator.directions=2"],
}
BACKBONE_TINY = {
    "mlp": ["backbone.hidden=[8]"],
    "conv4": ["backbone.width=4"],
    "convnet": ["backbone.width=4"],
    "resnet12": ["backbone.widths=[4,4,4,4]"],
    "wrn28_10": ["backbone.depth=10", "backbone.widen=1"],
}
# Where a pair runs only with some settings (compat's conditional pairs), those settings.
PAIR_SETTINGS = {("hpo", "implicit"): ["task.hyperparams=[weight_decay]", "task.weight_decay=1e-4"]}


def stand_in_data(data: str, folder: Path, monkeypatch) -> list[str]:
    """Write small files in the dataset's real format under `folder`; the overrides that read them."""
    if data in ("digits", "sinusoid"):
        return []
    if data in ("mnist", "fashion_mnist"):
        write_mnist(folder, {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[data], n_train=80, n_test=20)
        return [f"data.root={folder}", "data.val_size=20"]
    if data == "cifar10":
        import torchvision.datasets.cifar

        from test_data import write_cifar10

        write_cifar10(folder, per_batch=8, n_test=10)
        # torchvision checks the md5 of CIFAR-10's batches, which stand-ins cannot match.
        monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
        return [f"data.root={folder}", "data.val_size=20"]
    if data == "cifar_fs":
        import torchvision.datasets.cifar

        from test_episodes import write_cifar100

        write_cifar100(folder)
        # torchvision checks the md5 of CIFAR-100's files, which stand-ins cannot match.
        monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
        return [f"data.root={folder}"]
    if data == "miniimagenet":
        write_miniimagenet(folder)
        return [f"data.root={folder}", "data.image_size=16"]
    if data == "omniglot":
        import torchvision.datasets.omniglot

        write_omniglot(folder)
        # torchvision checks the md5 of Omniglot's zips, which stand-ins cannot match.
        monkeypatch.setattr(torchvision.datasets.omniglot, "check_integrity",
                            lambda path, md5=None: Path(path).with_suffix("").is_dir())
        return [f"data.root={folder}", "data.image_size=16"]
    raise AssertionError(f"no stand-in files for data={data}: add a writer to stand_in_data")


def train_in_process(compose_config, overrides: list[str], run_dir: Path) -> dict:
    cfg = compose_config("train", overrides, hydra_node=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    run_dir.mkdir()
    return train(cfg, choices, run_dir, "axes", "test")


def assert_ran(summary: dict, steps: int) -> None:
    assert summary["steps"] == steps
    numbers = {key: value for key, value in summary.items() if isinstance(value, float)}
    assert numbers and all(math.isfinite(value) for value in numbers.values()), summary


SUPPORTED = [(task, estimator) for task in TASKS for estimator in ESTIMATORS
             if why_unsupported(task, estimator) is None]


@pytest.mark.parametrize(("task", "estimator"), SUPPORTED, ids=[f"{t}-{e}" for t, e in SUPPORTED])
def test_every_supported_pair_runs(task, estimator, compose_config, tmp_path):
    overrides = [f"task={task}", f"estimator={estimator}", *RUN, *TASK_TINY[task], *ESTIMATOR_TINY[estimator],
                 *PAIR_SETTINGS.get((task, estimator), [])]
    if task != "influence":  # the one task without a network
        overrides += BACKBONE_TINY["mlp"]
    summary = train_in_process(compose_config, overrides, tmp_path / "run")
    assert (summary["task"], summary["estimator"]) == (task, estimator)
    assert_ran(summary, 2)


def _unsupported() -> list[tuple[str, str]]:
    """Pairs refused with each task's default settings (conditional pairs included)."""
    from hydra import compose, initialize_config_module

    from metaopt_cli.config.store import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("metaopt_cli.conf", version_base="1.3"):
            task_cfgs = {task: compose("train", overrides=[f"task={task}"]).task for task in TASKS}
    finally:
        GlobalHydra.instance().clear()
    return [(task, estimator) for task in TASKS for estimator in ESTIMATORS
            if why_unsupported(task, estimator, task_cfgs[task]) is not None]


UNSUPPORTED = _unsupported()


@pytest.mark.parametrize(("task", "estimator"), UNSUPPORTED, ids=[f"{t}-{e}" for t, e in UNSUPPORTED])
def test_every_unsupported_pair_is_one_error_line(task, estimator, capsys):
    """The CLI's own start-up check, which runs before Hydra starts a run."""
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_:
        check_command_line("train", [f"task={task}", f"estimator={estimator}"], multirun=False)
    GlobalHydra.instance().clear()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"task={task}" in lines[0] and f"estimator={estimator}" in lines[0], lines[0]


def test_the_matrix_has_both_kinds():
    """A matrix that lost its declarations would make both tests above vacuous."""
    assert len(SUPPORTED) >= len(TASKS) and UNSUPPORTED


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_shrunk(experiment, compose_config, tmp_path, monkeypatch):
    """lightning-hydra-template's experiment=glob(*) idea: each published setup, composed as it is,
    then shrunk by the tiny settings of the task, estimator and backbone it chooses, on stand-in
    files of its dataset."""
    composed = compose_config("train", [f"experiment={experiment}"], hydra_node=True)
    choices = composed.hydra.runtime.choices
    data = stand_in_data(choices.data, tmp_path / "data", monkeypatch)
    overrides = [f"experiment={experiment}", *RUN, "trainer.meta_batch=1", *TASK_TINY[choices.task],
                 *ESTIMATOR_TINY[choices.estimator], *data]
    if choices.task != "influence":
        overrides += BACKBONE_TINY[choices.backbone]
    if getattr(composed.task.get("method"), "name", None) == "trajectory_match":  # its experts first, as tiny
        made = run_in_process(["experts", f"experiment={experiment}", *data, *BACKBONE_TINY[choices.backbone],
                               "experts.count=1", "experts.epochs=2", "experts.dir=experts", "trainer.progress=false",
                               "hydra.run.dir=experts_log"], tmp_path)
        assert made.returncode == 0, made.stderr[-3000:]
        overrides += [f"task.experts={tmp_path / 'experts'}", "task.max_start_epoch=1", "task.expert_epochs=1"]
    summary = train_in_process(compose_config, overrides, tmp_path / "run")
    assert summary["task"] == choices.task
    assert_ran(summary, 2)
