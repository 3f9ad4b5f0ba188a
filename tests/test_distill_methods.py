"""task=distill's three methods on MNIST's real on-disk format (small stand-in files), each with
the ConvNet of the condensation papers: what a user with MNIST runs, short of the data."""
import pytest

from conftest import TINY, read_json, run_in_process
from torchvision_files import write_mnist

MNIST = ["data=mnist", "data.val_size=20", "backbone=convnet", "backbone.width=4", "trainer.progress=false"]
METHODS = {
    "unroll": [],
    "gradient_match": ["task.method=gradient_match", "task.horizon=2", "task.real_batch=4", "task.dsa=true",
                       "estimator.truncation=1"],
    "trajectory_match": ["task.method=trajectory_match", "task.horizon=3", "task.dsa=true", "task.experts=experts",
                         "estimator=backprop"],
}


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory):
    """Stand-in MNIST files, and experts trained on them for trajectory matching."""
    folder = tmp_path_factory.mktemp("mnist")
    write_mnist(folder / "data", "MNIST", n_train=80, n_test=20)
    result = run_in_process(["experts", *MNIST, f"data.root={folder / 'data'}", "experts.count=2",
                             "experts.epochs=3", "experts.dir=experts", "hydra.run.dir=experts_log"], folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_distills_stand_in_mnist(mnist_folder, method):
    run = f"run_{method}"
    result = run_in_process(["train", "task=distill", *TINY, *MNIST, f"data.root={mnist_folder / 'data'}",
                             *METHODS[method], f"hydra.run.dir={run}"], mnist_folder)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(mnist_folder / run / "summary.json")
    assert summary["steps"] == 4 and 0 <= summary["distilled_test_acc"] <= 1, summary
