"""task=nas's evaluation end to end: DARTS's CIFAR-10 search (experiment=nas_cifar10_darts) on
stand-in CIFAR-10 files, and the published setup it composes to."""
import json
import os

import torch
import torchvision

from conftest import run_in_process
from metaopt_cli.build import build_task
from metaopt_cli.tasks.nas.evaluate import retrained_scores
from test_data import write_cifar10

# The experiment as it is, shrunk: 3 cells of 2 nodes, 4 channels, a few steps of everything.
TINY_DARTS = ["task.cells=3", "task.nodes=2", "task.channels=4", "task.horizon=3", "trainer.meta_steps=3",
              "task.batch_size=8", "task.val_batch=8", "task.eval_steps=2", "task.eval_seeds=2",
              "task.random_archs=2", "trainer.checkpoint_every=3", "trainer.log_every=1"]


def test_darts_cifar10_search_composes_to_the_papers_settings(compose_config):
    cfg = compose_config("train", ["experiment=nas_cifar10_darts"])

    assert (cfg.task.cells, cfg.task.nodes, cfg.task.channels, cfg.task.batch_size) == (8, 4, 16, 64)
    assert (cfg.task.lr, cfg.task.momentum, cfg.task.weight_decay) == (0.025, 0.9, 3e-4)
    assert cfg.task.horizon == cfg.trainer.meta_steps == 50 * -(-25000 // 64)  # 50 epochs, w never reset
    assert cfg.data.name == "cifar10" and cfg.data.val_size == 25000  # half of the 50,000 training images
    assert (cfg.estimator.truncation, cfg.estimator.online, cfg.task.warm_start) == (1, True, True)
    assert cfg.trainer.outer_optimizer._target_.endswith("Adam") and cfg.trainer.outer_lr == 3e-4
    assert list(cfg.trainer.outer_optimizer.betas) == [0.5, 0.999] and cfg.trainer.outer_optimizer.weight_decay == 1e-3


def test_darts_cifar10_search_runs_end_to_end_on_stand_in_files(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "data", per_batch=8, n_test=10)
    # torchvision checks each CIFAR file against the real one's md5, which stand-ins cannot match.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    result = run_in_process(["train", "experiment=nas_cifar10_darts", f"data.root={tmp_path / 'data'}", "data.val_size=20",
                             *TINY_DARTS, "task.log_alphas=true", "trainer.progress=false", "logger=none",
                             "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())

    assert summary["task"] == "nas" and summary["data"] == "cifar10" and summary["steps"] == 3
    for who in ("searched", "random_arch"):
        for score in ("val_acc", "test_acc"):
            assert 0 <= summary[f"{who}_{score}"] <= 1 and summary[f"{who}_{score}_std"] >= 0
    genotype = json.loads(summary["genotype"])
    assert set(genotype) == {"normal", "reduce"} and all(len(node) == 2 for node in genotype["normal"])
    assert all(op != "none" for cell in genotype.values() for node in cell for op, _ in node)
    assert summary["random_archs"] == 2
    assert "random (best of 2)" in result.stdout + result.stderr  # the searched-vs-random table
    assert (run / "cell.png").stat().st_size > 0 and (run / "alphas.png").stat().st_size > 0


def test_retraining_clips_gradients_so_chained_skip_connections_do_not_diverge(compose_config, caplog):
    """Skips chained through every node multiply a dense cell's input by 3, and 7 over the bare
    task's two cells: unclipped, SGD at the bare task's task.eval_lr diverges to chance."""
    task = build_task(compose_config("train", ["task=nas", "task.eval_steps=100"]), torch.device("cpu"))
    chained = {"normal": [[["skip_connect", 0], ["skip_connect", 1]], [["skip_connect", 1], ["skip_connect", 2]],
                          [["skip_connect", 2], ["skip_connect", 3]]]}
    scores = retrained_scores(task, chained, 2, torch.Generator().manual_seed(0), "chained skips")

    assert scores["val_acc"].min() > 0.5
    assert "diverged" not in caplog.text
