"""Hydra's job log: <run dir>/train.log tells the run's story (start, meta-loss every few
meta-steps, evaluations, summary, the error that ended it), while the terminal shows what it
showed before, plainly."""
from conftest import TINY, assert_user_error, run_in_process
from test_state_nonfinite import HPO


def test_train_log_holds_the_start_the_meta_loss_and_the_summary(tmp_path):
    result = run_in_process(["train", *TINY, "trainer.meta_steps=8", "trainer.eval_every=4", "hydra.run.dir=run"],
                            tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "run" / "train.log").read_text()
    assert "[metaopt_cli.trainer][INFO] - meta-training: distill × tbptt (mlp, digits), 8 meta-steps" in log
    assert "meta-step 4: distilled_val_acc" in log  # the evaluation during training
    steps = [line for line in log.splitlines() if "/8: meta-loss" in line]
    assert [line.split(" - ")[1].split(":")[0] for line in steps] == [f"meta-step {n}/8" for n in range(1, 9)]
    assert all("outer lr 0.01" in line for line in steps)
    assert "checkpoint of meta-step 8 saved" in log
    summary = result.stdout[result.stdout.index("── metaopt: distill × tbptt ──"):]
    assert "[metaopt_cli.summary][INFO] - " + summary.rstrip("\n") in log
    # The terminal: plain messages, the summary as before, and no meta-loss lines beside the bar.
    assert "/8: meta-loss" not in result.stdout and "[INFO]" not in result.stdout
    assert "meta-step 4: distilled_val_acc" in result.stdout


def test_train_log_ends_with_the_error_that_stopped_the_run(tmp_path):
    result = run_in_process(["train", *HPO, "trainer.meta_steps=6", "trainer.outer_lr=1e4", "hydra.run.dir=run"],
                            tmp_path)
    line = assert_user_error(result, "non-finite at meta-step 2")
    assert (tmp_path / "run" / "train.log").read_text().rstrip().endswith(line)


def test_each_job_of_a_sweep_has_its_log(tmp_path):
    result = run_in_process(["train", "-m", *TINY, "trainer.seed=0,1", "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        log = (tmp_path / "sweep" / job / "train.log").read_text()
        assert "meta-step 4/4: meta-loss" in log and "── metaopt: distill × tbptt ──" in log
