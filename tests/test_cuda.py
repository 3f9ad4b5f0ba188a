"""The CUDA code paths. They run where a GPU is present and are skipped, saying so, elsewhere."""
import pytest
import torch

from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.tbptt import TBPTT

from conftest import TINY, assert_user_error, read_json, run_in_process

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@needs_cuda
def test_train_eval_and_resume_on_cuda(tmp_path):
    tiny = [*TINY, "trainer.device=cuda", "estimator.random_window=true", "hydra.run.dir=run"]
    result = run_in_process(["train", *tiny], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["device"].startswith("cuda") and summary["peak_mem_bytes"] > 0
    resumed = run_in_process(["train", f"resume={tmp_path / 'run'}", "trainer.meta_steps=6"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_json(tmp_path / "run" / "summary.json")["steps"] == 6


@pytest.mark.cuda
@needs_cuda
def test_estimators_agree_on_cuda(distill_problem_at):
    problem, meta_params = distill_problem_at(8)
    problem.init_params = {k: v.cuda() for k, v in problem.init_params.items()}
    problem.real_x, problem.real_y = problem.real_x.cuda(), problem.real_y.cuda()
    problem.synthetic.labels = problem.synthetic.labels.cuda()
    problem.net = problem.net.cuda()
    meta_params = {k: v.cuda() for k, v in meta_params.items()}
    generator = torch.Generator("cuda").manual_seed(0)
    exact = Backprop(False).estimate(problem, meta_params, generator)[0]
    for estimator in (Backprop(True), TBPTT(problem.horizon, False, online=False)):
        for name, grad in estimator.estimate(problem, meta_params, generator)[0].items():
            torch.testing.assert_close(grad, exact[name], rtol=1e-9, atol=1e-11)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_asking_for_cuda_without_it_is_a_user_error(tmp_path):
    assert_user_error(run_in_process(["train", *TINY, "trainer.device=cuda"], tmp_path), "no CUDA device")
