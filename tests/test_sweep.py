"""A sweep runs every point and reports its failed jobs at the end."""
from conftest import TINY, assert_user_error, read_json, run_cli


def test_a_diverging_point_fails_alone_and_the_sweep_reports_it(tmp_path):
    result = run_cli(["train", "-m", "trainer.outer_lr=1e9,1e-3", "trainer.outer_optimizer=sgd", *TINY,
                      "hydra.sweep.dir=sweep"], tmp_path)
    line = assert_user_error(result, "1 of 2 jobs failed: #0 (trainer.outer_lr=1000000000.0)", "non-finite")
    assert "#1" not in line
    assert not (tmp_path / "sweep" / "0" / "summary.json").exists()
    summary = read_json(tmp_path / "sweep" / "1" / "summary.json")
    assert summary["steps"] == 4
