"""`metaopt experts`: the expert trajectories of trajectory matching, stored as documented."""
import json

import torch

from metaopt_cli.backbones.mlp import MLP
from metaopt_cli.data.digits import load
from metaopt_cli.functional import sample_inits, split_scores

from conftest import assert_user_error, run_in_process

TINY_EXPERTS = ["experts.count=2", "experts.epochs=3", "trainer.progress=false"]


def test_experts_writes_the_documented_trajectories(tmp_path):
    result = run_in_process(["experts", *TINY_EXPERTS, "hydra.run.dir=log"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "outputs" / "experts" / "digits-mlp"
    manifest = json.loads((folder / "experts.json").read_text())
    assert {key: manifest[key] for key in ("data", "backbone", "dataset", "image_shape", "classes", "lr", "batch_size",
                                           "epochs", "count")} == {
        "data": "digits", "backbone": "mlp", "dataset": "digits", "image_shape": [1, 8, 8], "classes": 10, "lr": 0.01,
        "batch_size": 256, "epochs": 3, "count": 2}
    assert manifest["backbone_config"]["hidden"] == [128]
    assert len(manifest["train_acc"]) == len(manifest["test_acc"]) == 2
    assert sorted(path.name for path in folder.iterdir()) == ["expert_0.pt", "expert_1.pt", "experts.json"]

    make_net = lambda: MLP((1, 8, 8), 10, [128])  # noqa: E731
    # The same draw as the command's: its generator, seeded with trainer.seed, draws the inits first.
    inits = sample_inits(make_net, 2, torch.Generator().manual_seed(0), "cpu")
    data = load()
    net = make_net()
    for index in range(2):
        trajectory = torch.load(folder / f"expert_{index}.pt", weights_only=True)
        assert {name: list(value.shape[1:]) for name, value in trajectory.items()} == manifest["params"]
        assert all(len(value) == 4 for value in trajectory.values())  # epochs + 1 entries
        for name, value in trajectory.items():
            torch.testing.assert_close(value[0], inits[name][index], rtol=0, atol=0)
        # Training lowers the training loss, epoch after epoch.
        losses = [split_scores(net, {name: value[epoch:epoch + 1] for name, value in trajectory.items()},
                               data.train.x, data.train.y)[0].item() for epoch in range(4)]
        assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0] - 0.05, losses
        final = {name: value[-1:] for name, value in trajectory.items()}
        test_acc = split_scores(net, final, data.test.x, data.test.y)[1].item()
        assert abs(test_acc - manifest["test_acc"][index]) < 1e-6


def test_experts_dir_and_settings_name_the_folder(tmp_path):
    result = run_in_process(["experts", *TINY_EXPERTS, "experts.count=1", "backbone.hidden=[16]", "hydra.run.dir=log"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "outputs" / "experts" / "digits-mlp,backbone.hidden=[16]"
    assert json.loads((folder / "experts.json").read_text())["params"]["net.1.weight"] == [16, 64]
    result = run_in_process(["experts", *TINY_EXPERTS, "experts.count=1", "experts.dir=mine", "hydra.run.dir=log2"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "mine" / "expert_0.pt").is_file() and (tmp_path / "mine" / "experts.json").is_file()


def test_experts_bad_settings_are_one_line(tmp_path):
    assert_user_error(run_in_process(["experts", "experts.count=0"], tmp_path), "experts.count must be at least 1")
    assert_user_error(run_in_process(["experts", "experts.lr=-1"], tmp_path), "experts.lr must be positive")
    assert_user_error(run_in_process(["experts", "data=sinusoid"], tmp_path), "trains classifiers")
    (tmp_path / "file").write_text("")
    assert_user_error(run_in_process(["experts", "experts.dir=file/sub"], tmp_path), "experts.dir")
