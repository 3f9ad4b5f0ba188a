"""Pictures say which run they show (task × estimator × backbone on data); `metaopt eval` writes
its report and pictures into the evaluated run's eval/ folder and logs them to its W&B run."""
import hashlib
import math

import matplotlib.pyplot as plt
import pytest
import torch
from PIL import Image

from conftest import TINY, read_json, run_in_process
from metaopt_cli.data.episodes import Episodes
from metaopt_cli.pictures import save_figure, titled_pictures
from metaopt_cli.tasks.fewshot.picture import _true_sine


def title_of(path) -> str:
    return Image.open(path).text["Title"]


def test_save_figure_titles_the_picture_with_the_run_and_what_it_shows(tmp_path):
    fig = plt.figure()
    with titled_pictures("distill × tbptt × mlp on digits"):
        save_figure(fig, tmp_path / "a.png", "distilled images")
    assert fig._suptitle.get_text() == "distill × tbptt × mlp on digits\ndistilled images"
    assert title_of(tmp_path / "a.png") == "distill × tbptt × mlp on digits\ndistilled images"
    save_figure(plt.figure(), tmp_path / "b.png", "outside a command")
    assert title_of(tmp_path / "b.png") == "outside a command"


def test_the_true_sine_comes_back_from_an_episodes_points():
    generator = torch.Generator().manual_seed(0)
    x = lambda n: 10 * torch.rand(1, n, 1, generator=generator) - 5  # noqa: E731
    sine = lambda x: 2.5 * torch.sin(x - 1.2)  # noqa: E731
    support_x, query_x = x(5), x(10)
    episodes = Episodes(support_x, sine(support_x), query_x, sine(query_x))
    grid = torch.linspace(-5, 5, 50).unsqueeze(-1)
    assert torch.allclose(_true_sine(episodes, grid), sine(grid), atol=1e-4)


@pytest.mark.parametrize("overrides, picture, title", [
    (["experiment=maml_sinusoid", "task.test_episodes=10"], "sinusoid.png", "maml × backprop × mlp on sinusoid"),
    (["task=influence", "task.horizon=10"], "influence.png", "influence × pes"),  # its own data: no backbone, no data named
])
def test_a_run_titles_its_pictures(overrides, picture, title, tmp_path):
    tiny = ["trainer.meta_steps=2", "trainer.meta_batch=1", "trainer.progress=false", "logger=none"]
    result = run_in_process(["train", *tiny, *overrides, "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert title_of(tmp_path / "run" / picture).splitlines()[0] == title


def test_eval_writes_its_report_and_pictures_into_the_run_and_logs_them_to_its_wandb_run(tmp_path):
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wb")}
    (tmp_path / "wb").mkdir()
    trained = run_in_process(["train", *TINY, "logger=wandb", "logger.mode=offline", "hydra.run.dir=run"], tmp_path,
                             env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = tmp_path / "run"
    recorded = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in (run / ".hydra").iterdir()}
    evaluated = run_in_process(["eval", f"run={run}", "logger.mode=offline"], tmp_path, env=env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = read_json(run / "eval" / "eval.json")
    assert report["steps"] == 4 and math.isfinite(report["distilled_test_acc"])
    assert title_of(run / "eval" / "distilled.png").startswith("distill × tbptt × mlp on digits")
    assert not (run / "eval" / ".hydra").exists()
    assert {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in (run / ".hydra").iterdir()} == recorded
    # The training run's W&B run continued: a second offline folder of the same run id.
    ids = [path.name.rsplit("-", 1)[1] for path in (tmp_path / "wb" / "wandb").glob("offline-run-*")]
    assert len(ids) == 2 and ids[0] == ids[1]
