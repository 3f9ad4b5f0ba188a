"""Where each number of a run goes on the dashboard: a namespace per source, all plotted against
the meta-step, so that training, validation and the final test never mix under one flat key.

- `train/…`: what every logged meta-step measures (meta-loss, the estimator's metrics, wall
  seconds, the outer lr);
- `learned/…`: θ's readable scalars (the task's `log_values`: a learned inner lr, θ itself…);
- `eval/…`: the periodic evaluation on validation splits (model selection);
- `test/…`: the final evaluation, on test splits;
- `pictures/…`: the task's pictures; `curves/…`: the numbers behind them, as tables and charts;
- `run/…`: what the run was (task, estimator, steps, peak memory…), in the summary only.
"""
from dataclasses import dataclass, field

STEP = "meta_step"  # the step axis every namespace's charts are drawn against
TRAIN, LEARNED, EVAL, TEST, PICTURES, CURVES, RUN = "train", "learned", "eval", "test", "pictures", "curves", "run"
PLOTTED = (TRAIN, LEARNED, EVAL, TEST, PICTURES, CURVES)


@dataclass(frozen=True)
class Results:
    """A finished run's figures, by where they came from."""

    tested: dict  # the task's evaluation: test splits, the final report
    validated: dict = field(default_factory=dict)  # the same protocol on validation splits, where the task has one
    learned: dict = field(default_factory=dict)  # θ's readable scalars at the end

    def flat(self) -> dict:
        """summary.json's keys: the learned scalars as `learned_<name>`, then validation's, then the test's."""
        return {**{f"learned_{name}": value for name, value in self.learned.items()}, **self.validated, **self.tested}


def step_metrics(step: int, record: dict, learned=(), validated=()) -> dict:
    """A metrics.jsonl record as dashboard keys: the keys in `validated` under eval/, those in
    `learned` under learned/, the rest under train/; its step as the meta_step axis."""
    metrics = {STEP: step}
    for key, value in record.items():
        if key != "step":
            space = EVAL if key in validated else LEARNED if key in learned else TRAIN
            metrics[f"{space}/{key}"] = value
    return metrics


def final_metrics(results: Results) -> dict:
    """The end of the run as dashboard keys: the last point of the eval/ and learned/ curves, and
    the test/ figures."""
    return {**_under(LEARNED, results.learned), **_under(EVAL, results.validated), **_under(TEST, results.tested)}


def run_facts(facts: dict) -> dict:
    return _under(RUN, facts)


def picture_key(path) -> str:
    return f"{PICTURES}/{path.stem}"


def curves_key(name: str, part: str) -> str:
    return f"{CURVES}/{name}/{part}"


def _under(space: str, values: dict) -> dict:
    return {f"{space}/{key}": value for key, value in values.items()}
