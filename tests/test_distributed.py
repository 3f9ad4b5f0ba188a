"""Two ranks (gloo, two CPU processes) train exactly as one process does, hold the same θ and
outer optimizer, and continue each other's checkpoints."""
import json
import math
from pathlib import Path

import pytest
import torch

from ranks import held_state, train_as_ranks, train_here

RUN = ["trainer.progress=false", "logger=none", "trainer.dtype=float64", "trainer.meta_steps=3"]
DISTILL = ["task=distill", "task.horizon=6", "task.real_batch=32", "task.eval_models=2", "task.eval_steps=2",
           "task.eval_lrs=[0.1]", "backbone.hidden=[8]", "trainer.meta_batch=2"]
HPO = ["task=hpo", "task.horizon=6", "task.decay_steps=6", "task.batch_size=16", "task.val_batch=32",
       "task.eval_seeds=2", "task.random_search_trials=2", "backbone.hidden=[8]", "trainer.meta_batch=3"]
# What ranks split: the meta-batch's problems (backprop, tbptt) or the ES/PES particles, split
# unevenly where the count is odd.
CASES = {
    "maml-backprop": ["experiment=maml_sinusoid", "task.test_episodes=4", "trainer.meta_batch=3"],
    "distill-backprop": [*DISTILL, "estimator=backprop"],
    "distill-tbptt": [*DISTILL, "estimator=tbptt", "estimator.truncation=3"],
    "distill-es": [*DISTILL, "estimator=es", "estimator.particles=3"],
    "distill-pes": [*DISTILL, "estimator=pes", "estimator.particles=3", "estimator.truncation=3"],
    "hpo-tbptt-online": [*HPO, "estimator=tbptt", "estimator.truncation=2", "estimator.online=true"],
}
FLOAT32 = [*DISTILL, "estimator=backprop", "trainer.dtype=float32"]
# Online runs part-way through their inner runs when the job changes its number of ranks.
RESUMED = {
    "2-to-1": [*DISTILL, "estimator=pes", "estimator.particles=3", "estimator.truncation=4", "estimator.online=true"],
    "1-to-2": [*HPO, "estimator=tbptt", "estimator.truncation=4", "estimator.online=true"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Every case trained by one process and by two ranks (one start of the ranks for all)."""
    root = tmp_path_factory.mktemp("ranks")
    together = []
    for name, overrides in CASES.items():
        train_here([*RUN, *overrides], root / name / "one")
        together.append(([*RUN, *overrides], root / name / "two"))
    train_here([*RUN, *FLOAT32], root / "float32" / "one")
    together.append(([*RUN, *FLOAT32], root / "float32" / "two"))
    for name, overrides in RESUMED.items():
        train_here([*RUN, *overrides, "trainer.meta_steps=5"], root / name / "whole")
    train_here([*RUN, *RESUMED["1-to-2"], "trainer.meta_steps=2"], root / "1-to-2" / "parts")
    together += [([*RUN, *RESUMED["2-to-1"], "trainer.meta_steps=2"], root / "2-to-1" / "parts"),
                 ([*RUN, *RESUMED["1-to-2"], "trainer.meta_steps=5"], root / "1-to-2" / "parts")]
    train_as_ranks(2, together)
    train_here([*RUN, *RESUMED["2-to-1"], "trainer.meta_steps=5"], root / "2-to-1" / "parts")
    return root


def relative_difference(a: dict, b: dict) -> float:
    return max(((a[name] - b[name]).abs().max() / a[name].abs().max().clamp_min(1e-30)).item() for name in a)


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)


@pytest.mark.parametrize("name", CASES)
def test_two_ranks_reach_the_theta_of_one_process(runs, name):
    one, two = checkpoint(runs / name / "one"), checkpoint(runs / name / "two")
    assert one["step"] == two["step"] == 3
    assert relative_difference(one["meta_params"], two["meta_params"]) <= 1e-10
    assert not torch.equal(one["meta_params"][next(iter(one["meta_params"]))],
                           torch.zeros_like(one["meta_params"][next(iter(one["meta_params"]))]))
    losses = [[record["meta_loss"] for record in read_jsonl(runs / name / kind / "metrics.jsonl")] for kind in ("one", "two")]
    assert len(losses[0]) == 3 and all(math.isclose(a, b, rel_tol=1e-10) for a, b in zip(*losses))


def test_in_float32_two_ranks_stay_within_round_off_of_one_process(runs):
    one, two = checkpoint(runs / "float32" / "one"), checkpoint(runs / "float32" / "two")
    assert relative_difference(one["meta_params"], two["meta_params"]) <= 1e-5


@pytest.mark.parametrize("name", [*CASES, "float32"])
def test_every_rank_holds_the_same_theta_and_outer_optimizer(runs, name):
    held = [held_state(runs / name / "two", rank) for rank in (0, 1)]
    for key in held[0]["meta_params"]:
        assert torch.equal(held[0]["meta_params"][key], held[1]["meta_params"][key]), key
    for slot, state in held[0]["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, held[1]["optimizer"]["state"][slot][key]), (slot, key)


@pytest.mark.parametrize("name", RESUMED)
def test_a_resumed_run_with_another_number_of_ranks_continues_the_same_trajectory(runs, name):
    whole, parts = checkpoint(runs / name / "whole"), checkpoint(runs / name / "parts")
    assert whole["step"] == parts["step"] == 5
    assert relative_difference(whole["meta_params"], parts["meta_params"]) <= 1e-10
    runs_whole, runs_parts = whole["estimator"]["runs"], parts["estimator"]["runs"]
    assert len(runs_whole) == len(runs_parts) == 1 and runs_whole[0]["step"] == runs_parts[0]["step"]
    assert relative_difference(runs_whole[0]["state"], runs_parts[0]["state"]) <= 1e-10


def test_only_rank_0_writes_the_run_directory(runs):
    run_dir = runs / "distill-backprop" / "two"
    assert sorted(path.name for path in run_dir.iterdir() if not path.name.startswith("held.")) == \
        ["checkpoint.pt", "distilled.png", "metrics.jsonl", "summary.json"]
    assert len(read_jsonl(run_dir / "metrics.jsonl")) == 3


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
