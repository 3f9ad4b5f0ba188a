"""Truncation bias, on the PES paper's influence-balancing problem: truncated backprop with
short windows pushes θ away from the optimum, PES reaches it."""
import pytest

from conftest import read_json, run_in_process

OPTIMUM = -1 / 6


def sweep_both(cwd, meta_steps: int) -> tuple[dict, list[str]]:
    """Both experiments, as their YAML suggests: one sweep; their summaries by estimator and the
    jobs that drew a picture."""
    result = run_in_process(
        ["train", "-m", "experiment=influence_balancing,influence_balancing_tbptt", f"trainer.meta_steps={meta_steps}",
         "trainer.progress=false", "logger=none", "hydra.sweep.dir=sweep"],
        cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = {read_json(path)["estimator"]: read_json(path) for path in (cwd / "sweep").glob("*/summary.json")}
    pictures = sorted(path.parent.name for path in (cwd / "sweep").glob("*/influence.png"))
    return summaries, pictures


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return sweep_both(tmp_path_factory.mktemp("influence"), meta_steps=2000)


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


def test_each_run_draws_theta_against_the_optimum(tmp_path):
    """A picture needs no converged θ: two meta-steps each."""
    summaries, pictures = sweep_both(tmp_path, meta_steps=2)
    assert sorted(summaries) == ["pes", "tbptt"] and pictures == ["0", "1"]
