"""`metaopt gradcheck`: each estimator's draws against the exact meta-gradient."""
from types import SimpleNamespace

import pytest
import torch

from metaopt_cli.errors import UserError
from metaopt_cli.gradcheck import DrawStats, exact_gradient

from conftest import TINY, assert_user_error, read_json, run_in_process

KEYS = {"estimator", "reference", "precision", "samples", "cosine", "rel_error", "variance", "seconds",
        "peak_mem_bytes"}
FIGURES = ("cosine", "rel_error", "variance", "seconds", "peak_mem_bytes")


def gradcheck(tmp_path, *overrides: str):
    # Only the estimators' rows: tests/test_precision.py checks those of gradcheck.precisions.
    result = run_in_process(["gradcheck", *TINY, "task.horizon=4", "gradcheck.samples=2", "gradcheck.precisions=[]",
                             *overrides, "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, read_json(tmp_path / "run" / "gradcheck.json")


def test_backprop_agrees_with_the_reference_and_truncation_does_not(tmp_path):
    result, rows = gradcheck(tmp_path, "gradcheck.estimators=[backprop,tbptt]", "estimator.truncation=1")
    assert [row["estimator"] for row in rows] == ["backprop", "tbptt"]
    assert all(set(row) == KEYS for row in rows)
    assert all(row["reference"] == "backprop" and row["samples"] == 2 for row in rows)
    assert all(row["seconds"] > 0 and row["peak_mem_bytes"] > 0 for row in rows)
    backprop, tbptt = rows
    assert backprop["cosine"] == pytest.approx(1, abs=1e-6)
    assert backprop["rel_error"] == pytest.approx(0, abs=1e-6)
    # Truncation to one step of four is biased: the exact gradient's direction, not its size.
    assert tbptt["cosine"] < 1 - 1e-6 and tbptt["rel_error"] > 0.1
    # Deterministic estimators: every draw is the same.
    assert backprop["variance"] == tbptt["variance"] == 0
    assert "rel_error" in result.stdout and "tbptt" in result.stdout


def test_an_estimator_that_cannot_run_gets_a_row_saying_why(tmp_path):
    result, rows = gradcheck(tmp_path, "gradcheck.estimators=[tbptt]", "gradcheck.reference=backprop_checkpoint",
                             "estimator.truncation=6")
    assert rows == [{"estimator": "tbptt", "reference": "backprop_checkpoint", "precision": "fp32", "samples": 0,
                     **dict.fromkeys(FIGURES)}]
    assert "n/a: estimator.truncation=6 is longer than task.horizon=4" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["gradcheck.samples=0"], ["gradcheck.samples must be at least 1"]),
        (["gradcheck.reference=tbptt"], ["gradcheck.reference must be one of backprop, backprop_checkpoint"]),
        (["gradcheck.estimators=[backprop,nope]"], ["unknown estimator 'nope'", "backprop_checkpoint"]),
        (["gradcheck.sample=3"], ["unknown key 'gradcheck.sample'", "samples"]),
    ],
)
def test_bad_values_are_one_line_with_status_2(tmp_path, overrides, fragments):
    assert_user_error(run_in_process(["gradcheck", *TINY, *overrides], tmp_path), *fragments)
    assert not list(tmp_path.glob("**/gradcheck.json"))


def test_draw_statistics():
    stats = DrawStats({"theta": torch.tensor([1.0, 0.0])})
    for draw in ([1.0, 1.0], [1.0, -1.0]):
        stats.add({"theta": torch.tensor(draw)})
    # Unbiased on average, each draw 45° off and at distance 1 from the mean.
    assert stats.summary() == pytest.approx({"cosine": 2**-0.5, "rel_error": 0.0, "variance": 1.0})


def test_a_reference_out_of_memory_says_what_to_do():
    class OutOfMemory:
        def estimate(self, problem, meta_params, generator):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes")

    fix = "ran out of memory at task.horizon=500: use gradcheck.reference=backprop_checkpoint"
    with pytest.raises(UserError, match=fix):
        exact_gradient(OutOfMemory(), "backprop", SimpleNamespace(horizon=500), {}, torch.Generator())
