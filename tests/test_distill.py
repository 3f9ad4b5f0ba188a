"""task=distill: its meta-parameters, its checks, and that distilling actually helps."""
import pytest
import torch

from metaopt_cli.errors import UserError

from conftest import TINY, read_json, run_in_process


def test_meta_parameters_follow_the_learn_flags(distill_problem_at):
    problem, meta_params = distill_problem_at(4)
    assert set(meta_params) == {"images", "label_logits", "log_lr"}
    assert meta_params["images"].shape == (10, 1, 8, 8)
    images, targets, lr = problem.synthetic.unpack(meta_params)
    assert torch.allclose(targets.sum(-1), torch.ones(10, dtype=targets.dtype))
    assert lr.item() == pytest.approx(0.1)


def test_too_many_images_per_class_is_a_user_error():
    from metaopt_cli.backbones.mlp import MLP
    from metaopt_cli.data.digits import load
    from metaopt_cli.tasks.distill.task import Distill

    with pytest.raises(UserError, match="images_per_class=1000 exceeds"):
        Distill(load(), MLP, horizon=5, images_per_class=1000, learn_labels=False, learn_lr=False, inner_lr=0.1,
                init="real", real_batch=8, eval_models=2, eval_steps=2, eval_lrs=[0.1])


@pytest.mark.slow
def test_distilled_images_beat_random_real_ones(tmp_path):
    """Ten distilled images of digits teach a fresh MLP more than ten random real ones do,
    even with the baseline's learning rate tuned: the point of the task."""
    overrides = [o for o in TINY if not o.startswith(("trainer.meta_steps", "task.eval", "trainer.meta_batch"))]
    result = run_in_process(["train", *overrides, "trainer.meta_steps=150", "hydra.run.dir=run"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["distilled_test_acc"] > summary["random_real_test_acc"] + 0.1, summary
