"""estimator.stagger end to end: a staggered online run stopped and resumed ends bit-identical
to one that ran straight through (each run's problem re-sampled from its own draw)."""
import json

import pytest
import torch

from metaopt_cli.checkpoint import load_checkpoint

from conftest import train_whole_and_resumed


@pytest.mark.slow
@pytest.mark.parametrize("estimator", [["estimator=tbptt"], ["estimator=pes", "estimator.particles=2"]],
                         ids=["tbptt", "pes"])
def test_a_staggered_run_resumes_like_an_uninterrupted_one(tmp_path, estimator):
    overrides = ["task=hpo", *estimator, "estimator.online=true", "estimator.stagger=true", "estimator.truncation=3",
                 "task.horizon=8", "task.decay_steps=8", "trainer.meta_batch=3", "task.eval_seeds=2",
                 "task.random_search_trials=1", "trainer.progress=false", "logger=none"]
    whole, parts = train_whole_and_resumed(tmp_path, overrides, stop_at=4, steps=7)
    a, b = load_checkpoint(whole), load_checkpoint(parts)
    assert [run["step"] for run in a["estimator"]["runs"]] == [run["step"] for run in b["estimator"]["runs"]]
    assert len({run["step"] for run in a["estimator"]["runs"]}) > 1  # the runs are at different steps
    for name, value in a["meta_params"].items():
        assert torch.equal(value, b["meta_params"][name]), name
    logged = [[{k: v for k, v in json.loads(line).items() if k != "wall_seconds"}
               for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (whole, parts)]
    assert logged[0] == logged[1] and len(logged[0]) == 7
