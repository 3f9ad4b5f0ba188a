"""What an offline W&B run holds, read from its own files (no network): the metrics namespaced
against the meta-step, the pictures, the curves as tables with charts, the checkpoint as a model
artifact (at the end, and when a signal stops the run) from whose files `metaopt eval` runs."""
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
import wandb

from metaopt_cli import trainer
from metaopt_cli.backbones.mlp import MLP
from metaopt_cli.data.digits import load
from metaopt_cli.tasks.distill.task import Distill
from metaopt_cli.tracking.namespaces import Results
from metaopt_cli.tracking.wandb_tracker import WandbTracker

from conftest import TINY, read_json, run_in_process
from wandb_records import read_records

OFFLINE = ["logger=wandb", "logger.mode=offline"]
LOPT = ["task=learned_opt", "estimator=backprop", "task.horizon=6", "task.test_horizon=8", "task.test_seeds=2",
        "task.adam_lrs=[0.01]", "task.sgd_lrs=[0.1]", "trainer.meta_steps=3", "trainer.meta_batch=2",
        "trainer.eval_every=2", "trainer.progress=false", *OFFLINE]


@pytest.fixture
def wandb_offline(tmp_path):
    """W&B's folders (runs, artifact staging, cache, settings) under the test's."""
    folders = {name: tmp_path / name.lower() for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR",
                                                          "WANDB_CONFIG_DIR")}
    for folder in folders.values():
        folder.mkdir()
    return {"WANDB_MODE": "offline", **{name: str(folder) for name, folder in folders.items()}}


def offline_run(env: dict) -> Path:
    # W&B's service process writes the run file, and finish() may return before it has flushed
    # it: stopping the service closes the file.
    wandb.teardown()
    [run] = Path(env["WANDB_DIR"]).glob("wandb/offline-run-*")
    return run


def logged(run: Path) -> dict[str, list]:
    """The run file's records by type."""
    [path] = run.glob("run-*.wandb")
    records = {}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        records.setdefault(kind, []).append(getattr(record, kind))
    return records


def charts(records: dict) -> dict[str, dict]:
    """The run's custom charts (wandb.plot.*), by key: W&B keeps them in the run's config."""
    prefix = "_wandb/visualize/"
    return {key[len(prefix):]: json.loads(item.value_json)["panel_config"]
            for config in records["config"] for item in config.update
            if (key := item.key or "/".join(item.nested_key)).startswith(prefix)}


def history_keys(records: dict) -> set[str]:
    return {item.key or "/".join(item.nested_key) for row in records["history"] for item in row.item}


def test_an_offline_run_holds_namespaced_metrics_pictures_curve_tables_and_the_model(tmp_path, wandb_offline):
    result = run_in_process(["train", *LOPT, "hydra.run.dir=run"], tmp_path, env=wandb_offline)
    assert result.returncode == 0, result.stderr[-3000:]
    run = offline_run(wandb_offline)
    records = logged(run)
    keys = {key.split("/")[0] + "/" + key.split("/")[1] for key in history_keys(records) if "/" in key}
    assert {"train/meta_loss", "train/wall_seconds", "eval/lopt_final_loss", "test/lopt_final_loss",
            "pictures/meta_test", "curves/meta_test"} <= keys, keys
    assert not {key for key in history_keys(records) if "/" not in key and not key.startswith("_")} - {"meta_step"}
    # Every namespace is plotted against the meta-step.
    axes = {metric.glob_name: metric.step_metric for metric in records["metric"] if metric.glob_name}
    assert {axes[f"{space}/*"] for space in ("train", "eval", "test", "learned")} == {"meta_step"}
    # metrics.jsonl keeps its flat keys, read by scripts.
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3] and "meta_loss" in lines[0] and "lopt_final_loss" in lines[1]
    summary = {item.key or "/".join(item.nested_key) for update in records["summary"] for item in update.update}
    assert {"run/task", "run/steps", "test/adam_final_loss"} <= summary, summary
    # The picture, and the curves it was drawn from as a table: 3 optimizers × (8 steps + the start).
    media = run / "files" / "media"
    assert [path.name.split("_")[0] for path in media.glob("images/pictures/*.png")] == ["meta"]
    [table] = media.glob("table/curves/meta_test/table_*.table.json")
    content = json.loads(table.read_text())
    assert content["columns"] == ["step", "curve", "value"] and len(content["data"]) == 3 * 9
    assert charts(records)["curves/meta_test/value"]["fieldSettings"] == {"x": "step", "y": "value", "stroke": "curve"}
    [model] = [artifact for artifact in records["artifact"] if artifact.type == "model"]
    assert (model.type, model.name) == ("model", f"model-{run.name.rsplit('-', 1)[1]}")
    assert json.loads(model.metadata) == {"task": "learned_opt", "estimator": "backprop", "backbone": "mlp",
                                          "data": "digits", "step": 3}
    assert {entry.path for entry in model.manifest.contents} == {
        "checkpoint.pt", ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "summary.json"}


def test_a_stopped_run_logs_its_checkpoint_and_eval_runs_from_the_artifacts_files(tmp_path, wandb_offline,
                                                                                  monkeypatch):
    step, steps = trainer.meta_step, []

    def stopped_at_step_2(*args, **kwargs):  # as a scheduler's SIGTERM during the second meta-step
        steps.append(step(*args, **kwargs))
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return steps[-1]

    monkeypatch.setattr(trainer, "meta_step", stopped_at_step_2)
    result = run_in_process(["train", *TINY, *OFFLINE, "hydra.run.dir=run"], tmp_path, env=wandb_offline)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-3000:]
    records = logged(offline_run(wandb_offline))
    [model] = [artifact for artifact in records["artifact"] if artifact.type == "model"]
    assert json.loads(model.metadata)["step"] == 2 and "step-2" in model.aliases
    assert "learned/inner_lr" in history_keys(records)  # distillation's learned inner lr, as the lr
    # What `wandb artifact get … --root DIR` downloads: the manifest's files, at their paths.
    downloaded = tmp_path / "downloaded"
    for entry in model.manifest.contents:
        (downloaded / entry.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(entry.local_path, downloaded / entry.path)
    shutil.rmtree(tmp_path / "run")  # nothing of the run directory itself is needed
    evaluated = run_in_process(["eval", f"run={downloaded}"], tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    [report] = tmp_path.glob("**/eval.json")
    assert read_json(report)["steps"] == 2


def test_learned_scalars_of_theta_are_in_the_summary_under_their_own_names():
    task = Distill(load(val_fraction=0.2, test_fraction=0.2, split_seed=0), lambda in_shape, num_outputs: MLP(
        in_shape, num_outputs, [8]), horizon=2, images_per_class=1, learn_labels=False, learn_lr=True, inner_lr=0.1,
        init="real", real_batch=8, eval_models=2, eval_steps=2, eval_lrs=[0.1])
    learned = task.log_values(task.init_meta_params(torch.Generator().manual_seed(0)))
    assert learned == {"inner_lr": pytest.approx(0.1)}  # θ holds its log
    assert Results({"distilled_test_acc": 0.5}, learned=learned).flat() == {
        "learned_inner_lr": pytest.approx(0.1), "distilled_test_acc": 0.5}


@pytest.mark.parametrize("command, overrides, charted", [
    ("bench", ["bench.horizons=[2,4]", "bench.repeats=1", "bench.estimators=[backprop,es]"],
     {"curves/bench/seconds": "wandb/line/v0", "curves/bench/peak_mem_bytes": "wandb/line/v0"}),
    ("gradcheck", ["task.horizon=4", "gradcheck.samples=2", "gradcheck.precisions=[]", "gradcheck.estimators=[es]"],
     {"curves/gradcheck/cosine": "wandb/bar/v0", "curves/gradcheck/rel_error": "wandb/bar/v0"}),
])
def test_bench_and_gradcheck_log_their_rows_as_a_table_with_charts(tmp_path, wandb_offline, command, overrides,
                                                                   charted):
    result = run_in_process([command, *TINY, *OFFLINE, *overrides, "hydra.run.dir=run"], tmp_path, env=wandb_offline)
    assert result.returncode == 0, result.stderr[-3000:]
    run = offline_run(wandb_offline)
    records = logged(run)
    assert {record.job_type for record in records["run"]} == {command}
    assert {key: chart["panelDefId"] for key, chart in charts(records).items()} == charted
    [table] = (run / "files" / "media").glob(f"table/curves/{command}/table_*.table.json")
    assert len(json.loads(table.read_text())["data"]) == len(read_json(tmp_path / "run" / f"{command}.json"))
    assert bool(list(run.glob("files/media/images/pictures/*.png"))) == (command == "bench")


def test_a_checkpoint_w_and_b_cannot_log_costs_a_warning_not_the_stop(tmp_path, monkeypatch, caplog):
    """A stopping run must still hand its signal on (to submitit's requeue) when W&B fails."""
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    (tmp_path / "checkpoint.pt").write_bytes(b"")
    tracker = WandbTracker("disabled", "metaopt", None, init_timeout=30)
    tracker.start({}, tmp_path, "run", "group", None)
    monkeypatch.setattr(wandb.Artifact, "add_file", full_disk)
    try:
        tracker.log_checkpoint(tmp_path, 3, dict(task="distill", estimator="tbptt", backbone="mlp", data="digits"))
    finally:
        tracker.finish(failed=False)
    [warning] = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert "meta-step 3" in warning and "No space left" in warning and str(tmp_path) in warning
