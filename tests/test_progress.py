"""Progress bars where a user waits outside meta-training: the evaluation, gradcheck, bench.
On stderr, and only when trainer.progress asks for them (TINY turns them off)."""
import pytest

from conftest import TINY, run_in_process
from metaopt_cli.progress import progress, showing_progress

SHOWN = "trainer.progress=true"


@pytest.mark.parametrize("shown", [True, False])
def test_the_default_train_shows_its_evaluation_progress_on_stderr(shown, tmp_path):
    result = run_in_process(["train", *TINY, *([SHOWN] if shown else []), "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for bar in ("evaluate: distilled set on val", "evaluate: distilled set on test", "evaluate: random real, lr 0.1"):
        assert (bar in result.stderr) is shown
        assert bar not in result.stdout


def test_gradcheck_counts_its_estimates(tmp_path):
    result = run_in_process(["gradcheck", *TINY, SHOWN, "task.horizon=4", "gradcheck.samples=2",
                             "gradcheck.precisions=[]", "gradcheck.estimators=[backprop,tbptt]", "estimator.truncation=2", "hydra.run.dir=run"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gradcheck: estimates" in result.stderr
    assert "/7 " in result.stderr  # the exact gradient, then a warm-up and 2 draws per estimator


def test_bench_counts_its_cells(tmp_path):
    result = run_in_process(["bench", *TINY, SHOWN, "bench.horizons=[4,8]", "bench.repeats=1",
                             "bench.estimators=[backprop]", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bench: cells" in result.stderr and "/2 " in result.stderr


def test_a_loop_draws_nothing_unless_a_command_shows_progress(capsys):
    assert list(progress(range(3), "quiet")) == [0, 1, 2]
    with showing_progress(True):
        assert list(progress(range(3), "loud")) == [0, 1, 2]
    with showing_progress(False):
        list(progress(range(3), "off"))
    err = capsys.readouterr().err
    assert "loud" in err and "/3 " in err
    assert "quiet" not in err and "off" not in err
