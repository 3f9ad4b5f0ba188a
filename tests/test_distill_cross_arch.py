"""task.eval_backbones: the distilled set and the random-real baseline trained into other
architectures at the final evaluation, each built from its own option's defaults."""
import torch

from metaopt_cli.backbones.conv4 import Conv4
from metaopt_cli.build import build_task
from metaopt_cli.tasks.distill.evaluate import evaluate_across, evaluate_random_real

from conftest import TINY, assert_user_error, read_json, run_in_process

CROSS = [*TINY, "task.eval_backbones=[mlp,conv4]", "data.image_size=16"]


def test_a_tiny_run_reports_each_backbone(tmp_path):
    result = run_in_process(["train", *CROSS, "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    for name in ("mlp", "conv4"):
        for key in ("distilled_test_acc", "random_real_test_acc"):
            assert 0 <= summary[f"{key}_on_{name}"] <= 1 and summary[f"{key}_on_{name}_std"] >= 0
        assert summary[f"random_real_lr_on_{name}"] == summary[f"distilled_lr_on_{name}"] == 0.1
    assert "distilled_test_acc" in summary and "distilled_val_acc_on_mlp" not in summary


def test_each_backbone_is_built_at_its_options_defaults(compose_config):
    """The run's backbone is mlp at its defaults, so training into eval_backbones' mlp from the
    same draws gives the same figures; conv4 is the option's network (width 64)."""
    cfg = compose_config("train", [*CROSS, "backbone=mlp"])
    try:
        task = build_task(cfg, torch.device("cpu"))
    finally:
        torch.set_default_dtype(torch.float32)
    mlp, conv4 = task.eval_archs
    assert (mlp.name, conv4.name) == ("mlp", "conv4")
    assert isinstance(conv4.net, Conv4) and sum(p.numel() for p in conv4.net.parameters()) > 3 * 64 * 64 * 9
    own = evaluate_random_real(task, torch.Generator().manual_seed(2))
    other = evaluate_random_real(task, torch.Generator().manual_seed(2), mlp)
    assert other == {key.replace("_acc", "_acc_on_mlp").replace("_lr", "_lr_on_mlp"): value
                     for key, value in own.items()}
    meta_params = task.init_meta_params(torch.Generator().manual_seed(0))
    across = evaluate_across(task, meta_params, torch.Generator().manual_seed(3))
    assert set(across) == {f"{figure}_on_{name}{std}" for name in ("mlp", "conv4")
                           for figure, stds in (("distilled_test_acc", ("", "_std")), ("distilled_lr", ("",)),
                                                ("random_real_test_acc", ("", "_std")), ("random_real_lr", ("",)))
                           for std in stds}
    assert across["random_real_test_acc_on_conv4"] != across["random_real_test_acc_on_mlp"]


def test_an_unknown_backbone_is_one_error_line_listing_the_options(tmp_path):
    result = run_in_process(["train", *TINY, "task.eval_backbones=[mlp,vgg11]", "hydra.run.dir=run"], tmp_path)
    assert_user_error(result, "task.eval_backbones", "vgg11", "mlp, ", "conv4")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_backbone_too_big_for_the_images_is_the_size_checks_line(tmp_path):
    result = run_in_process(["train", *TINY, "task.eval_backbones=[conv4]", "hydra.run.dir=run"], tmp_path)
    assert_user_error(result, "task.eval_backbones: conv4", "16×16", "8×8")
