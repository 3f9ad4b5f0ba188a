"""Truncation bias, on the PES paper's influence-balancing problem: truncated backprop with
short windows pushes θ away from the optimum, PES reaches it."""
import pytest

from conftest import read_json, run_cli

OPTIMUM = -1 / 6


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("influence")
    result = run_cli(
        ["train", "-m", "experiment=influence_balancing,influence_balancing_tbptt", "trainer.meta_steps=2000",
         "trainer.progress=false", "logger=none", "hydra.sweep.dir=sweep"],
        cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = {read_json(path)["estimator"]: read_json(path) for path in (cwd / "sweep").glob("*/summary.json")}
    pictures = sorted(path.parent.name for path in (cwd / "sweep").glob("*/influence.png"))
    return summaries, pictures


@pytest.mark.slow
def test_pes_reaches_the_optimum(runs):
    runs, _ = runs
    assert runs["pes"]["theta"] == pytest.approx(OPTIMUM, abs=0.01)
    assert runs["pes"]["optimal_theta"] == pytest.approx(OPTIMUM)


@pytest.mark.slow
def test_short_truncations_drive_theta_the_wrong_way(runs):
    runs, _ = runs
    # θ starts at 0.5, above the optimum; truncated backprop pushes it further up.
    assert runs["tbptt"]["theta"] > 0.5
    assert runs["tbptt"]["steady_state_loss"] > 100 * runs["pes"]["steady_state_loss"] + 1


def test_each_run_draws_theta_against_the_optimum(runs):
    _, pictures = runs
    assert pictures == ["0", "1"]
