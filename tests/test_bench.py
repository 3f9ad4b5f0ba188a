"""`metaopt bench`: seconds and peak memory per estimator as the horizon grows."""
import pytest

from conftest import TINY, assert_user_error, read_json, run_in_process

KEYS = {"estimator", "horizon", "seconds", "peak_mem_bytes"}


def bench(tmp_path, *overrides: str):
    result = run_in_process(["bench", *TINY, "bench.horizons=[4,8]", "bench.repeats=1", *overrides,
                             "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, read_json(tmp_path / "run" / "bench.json")


def test_bench_measures_every_cell_and_plots_them(tmp_path):
    result, rows = bench(tmp_path, "estimator.truncation=2")
    assert [(row["estimator"], row["horizon"]) for row in rows] == [
        (name, horizon) for name in ("backprop", "backprop_checkpoint", "tbptt") for horizon in (4, 8)
    ]
    assert all(set(row) == KEYS and row["seconds"] > 0 and row["peak_mem_bytes"] > 0 for row in rows)
    peak = {(row["estimator"], row["horizon"]): row["peak_mem_bytes"] for row in rows}
    assert peak["backprop", 8] > 1.3 * peak["backprop", 4]  # O(K)
    assert peak["tbptt", 8] <= 1.05 * peak["tbptt", 4]  # O(T): the same windows of 2
    assert peak["backprop_checkpoint", 8] < peak["backprop", 8]
    assert (tmp_path / "run" / "bench.png").stat().st_size > 0
    assert "backprop_checkpoint" in result.stdout and "peak MiB" in result.stdout


def test_a_truncation_longer_than_the_horizon_skips_the_cell(tmp_path):
    result, rows = bench(tmp_path, "bench.estimators=[tbptt]", "estimator.truncation=6")
    assert [(row["estimator"], row["horizon"]) for row in rows] == [("tbptt", 8)]
    assert "skipped tbptt at K=4: estimator.truncation=6 is longer than task.horizon=4" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["bench.horizons=[]"], ["bench.horizons is empty"]),
        (["bench.horizons=[0,4]"], ["bench.horizons must be positive"]),
        (["bench.estimators=[backprop,nope]"], ["unknown estimator 'nope' in bench.estimators"]),
        (["-m", "bench.repeats=1,0"], ["bench.repeats must be at least 1"]),
    ],
)
def test_bad_values_are_one_line_with_status_2(tmp_path, overrides, fragments):
    assert_user_error(run_in_process(["bench", *TINY, *overrides], tmp_path), *fragments)
    assert not list(tmp_path.glob("**/bench.json"))
