"""The outer loop: sample → estimate → outer step on θ → log → evaluate → checkpoint."""
import logging
import math
import time
from pathlib import Path
from typing import NoReturn

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from . import compiled, distributed
from .build import build, build_task, eval_generator, pick_device
from .checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from .compat import check_run_config
from .distributed import World, gathered
from .errors import UserError
from .divergence import NonFinite, diverged, finite, snapshot
from .estimators import ranks
from .estimators.state import Resample, sample
from .job_log import FILE_ONLY, MetaLossLines
from .memory import measure_peak
from .outer import build_outer, outer_lr, restore_outer, step_schedule
from .objective import objective_of
from .precision import matmuls, task_at
from .run_config import resume_command
from .signals import StopRequest, stop_on_signals
from .summary import finish_run
from .tracking.metrics_file import MetricsFile
from .tracking.namespaces import Results
from .tracking.null_tracker import NullTracker

log = logging.getLogger(__name__)


def train(cfg: DictConfig, choices: dict, run_dir: Path, run_name: str, default_group: str) -> dict | None:
    """The run's summary; None on ranks other than 0, which own no output."""
    check_run_config(cfg, choices)
    objective = objective_of(cfg, choices).key  # an unknown key fails now, not after the run
    trainer, world = cfg.trainer, distributed.current()
    compiled.start(trainer.compile)
    device = pick_device(trainer.device, world)
    torch.manual_seed(trainer.seed)
    task = task_at(build_task(cfg, device), trainer.precision)  # bf16: its problems' inner loops
    estimator = build(cfg.estimator)
    # All randomness of meta-training comes from this generator, whose state the checkpoint
    # keeps; evaluation draws from its own, so evaluating never shifts training.
    generator = torch.Generator(device).manual_seed(trainer.seed)
    meta_params = {name: value.requires_grad_() for name, value in task.init_meta_params(generator).items()}
    if hasattr(estimator, "check_meta_params"):  # a limit on θ's size, checked before any work
        estimator.check_meta_params(meta_params)
    configured, scheduler = build_outer(trainer, meta_params.values())
    optimizer = _outer_optimizer(task, meta_params, configured)
    step, wall, run_id = 0, 0.0, None
    if has_checkpoint(run_dir):
        checkpoint = load_checkpoint(run_dir)
        _check_same_run(checkpoint, choices, meta_params, run_dir)
        step, wall, run_id = _restore(checkpoint, meta_params, optimizer, generator, estimator, Resample(task, device))
        restore_outer(configured, scheduler, checkpoint.get("scheduler"), trainer)
    world.broadcast(meta_params)  # identical already (same seed, same checkpoint): made certain, once
    tracker = build(cfg.logger) if world.main else NullTracker()
    metrics_file = MetricsFile(run_dir / "metrics.jsonl", resume_step=step) if world.main else None
    save = _saver(run_dir, world)
    failed, peak = True, None
    try:
        tracker.start(_plain(cfg), run_dir, run_name, default_group, run_id)
        log.info(f"{'resuming at meta-step ' + str(step) if step else 'meta-training'}: {choices['task']} × "
                 f"{choices['estimator']} ({choices['backbone']}, {choices['data']}), {trainer.meta_steps} meta-steps, "
                 f"run dir {run_dir}")
        meta_loss_lines = MetaLossLines(log, trainer.meta_steps)
        with stop_on_signals() as stop:
            bar = tqdm(range(step, trainer.meta_steps), initial=step, total=trainer.meta_steps,
                       desc="meta-train", disable=not (trainer.progress and world.main))
            previous = None  # the run before the last outer step: where a divergence rolls back to
            for step in bar:
                current = snapshot(_checkpoint(choices, step, wall, meta_params, optimizer, scheduler, generator,
                                               estimator, tracker))
                started, lr = time.perf_counter(), outer_lr(configured)  # the lr of this step's outer step
                try:
                    meta_loss, metrics, step_peak = meta_step(task, estimator, meta_params, optimizer, generator,
                                                               trainer, world, measure=peak is None)
                except NonFinite:  # θ as this step found it is where the run went wrong
                    raise diverged("the meta-loss or its gradient", step, previous, task, optimizer, trainer,
                                   run_dir, save) from None
                step_schedule(scheduler)
                peak = step_peak if peak is None else peak
                wall += time.perf_counter() - started
                done = step + 1
                bar.set_postfix(meta_loss=f"{meta_loss:.4f}")
                learned = _logged_values(task, meta_params)
                record = {"step": done, "meta_loss": meta_loss, "outer_lr": lr, **_floats(metrics),
                          "wall_seconds": wall, **learned}
                evaluating = trainer.eval_every and done % trainer.eval_every == 0 and done < trainer.meta_steps
                validated = {}
                if evaluating and world.main:  # model selection: on validation data where the task has it
                    validate = task.validate if hasattr(task, "validate") else task.evaluate
                    validated = validate(meta_params, eval_generator(trainer.seed, device))
                    record.update(validated)
                    log.info(f"meta-step {done}: "
                             + ", ".join(f"{key} {value:.4g}" for key, value in validated.items()))
                meta_loss_lines.add(done, meta_loss, lr)
                if (evaluating or done % trainer.log_every == 0) and world.main:
                    metrics_file.write(record)
                    tracker.log(done, record, learned, validated)
                stopping = world.max(stop.signal or 0)  # a signal to any rank stops all after this step
                if done % trainer.checkpoint_every == 0 or done == trainer.meta_steps or stopping:
                    if not finite(meta_params.values()):  # this step's own outer step overshot
                        raise diverged("θ", step, current, task, optimizer, trainer, run_dir, save)
                    save(_checkpoint(choices, done, wall, meta_params, optimizer, scheduler, generator, estimator,
                                     tracker))
                if stopping:
                    _stop(stop, stopping, done, run_dir, tracker, choices)
                previous = current
            step = trainer.meta_steps
        # A signal after the last step's checkpoint: stop before the final evaluation.
        if stopping := world.max(stop.signal or 0):
            _stop(stop, stopping, step, run_dir, tracker, choices)
        bar.close()
        if not world.main:
            failed = False
            return None
        tested = task.evaluate(meta_params, eval_generator(trainer.seed, device))
        # The summary shows the score used for model selection beside the test's, unless the final
        # evaluation gave it already (nas retrains its cell once for both).
        validated = {}
        if hasattr(task, "validate") and not getattr(task, "evaluate_validates", False):
            validated = task.validate(meta_params, eval_generator(trainer.seed, device))
        pictures = task.save_pictures(meta_params, run_dir)
        tracker.log_pictures(step, pictures)
        results = Results(tested, validated, _logged_values(task, meta_params))
        summary = finish_run(cfg, choices, run_dir, step, wall, peak, device, results, tracker, world.size,
                             objective)
        tracker.log_checkpoint(run_dir, step, choices)
        failed = False
        return summary
    finally:
        if metrics_file is not None:
            metrics_file.close()
        tracker.finish(failed)


def meta_step(task, estimator, meta_params, optimizer, generator, trainer, world: World, measure: bool):
    """Sample problems, estimate dL/dθ (all ranks together), take the outer step. Returns the
    meta-loss, the estimator's metrics and, when asked to measure (it costs time), this rank's
    peak memory. A non-finite meta-loss or meta-gradient raises NonFinite before θ changes."""
    problem = sample(task, generator, trainer.meta_batch)  # noted on the problem: how it was drawn

    def estimate():
        with matmuls(trainer.precision), compiled.compiling(trainer.compile):
            return ranks.estimate(estimator, problem, meta_params, generator, world)

    peak = None
    if measure:
        (grads, metrics), peak = measure_peak(estimate, next(iter(meta_params.values())).device)
    else:
        grads, metrics = estimate()
    meta_loss = float(metrics["meta_loss"])  # the one host sync of a meta-step
    if not (math.isfinite(meta_loss) and finite(grads.values())):
        raise NonFinite
    for name, value in meta_params.items():
        value.grad = grads[name]
    optimizer.step()
    return meta_loss, metrics, peak


def _check_same_run(checkpoint: dict, choices: dict, meta_params, run_dir: Path) -> None:
    """A folder holding another run's checkpoint (hydra.run.dir pointed at it by mistake) is
    refused rather than resumed into a θ of another shape."""
    saved = checkpoint["meta_params"]
    same = checkpoint["task"] == choices["task"] and saved.keys() == meta_params.keys() and all(
        saved[name].shape == value.shape for name, value in meta_params.items())
    if not same:
        raise UserError(f"{run_dir} holds the checkpoint of another run (task={checkpoint['task']}, θ shaped "
                        "otherwise): continue that run with resume=, or pass a new hydra.run.dir")


def _restore(checkpoint: dict, meta_params, optimizer, generator, estimator,
             resample: Resample) -> tuple[int, float, str | None]:
    with torch.no_grad():
        for name, value in meta_params.items():
            value.copy_(checkpoint["meta_params"][name])
    optimizer.load_state_dict(checkpoint["optimizer"])
    generator.set_state(checkpoint["generator"])
    if hasattr(estimator, "load_state_dict"):  # an online estimator's inner run in progress
        estimator.load_state_dict(checkpoint["estimator"], resample)
    return checkpoint["step"], checkpoint["wall_seconds"], checkpoint["wandb_id"]


def _checkpoint(choices, step, wall, meta_params, optimizer, scheduler, generator, estimator, tracker) -> dict:
    return {
        "estimator": estimator.state_dict() if hasattr(estimator, "state_dict") else None,
        "task": choices["task"],
        "step": step,
        "wall_seconds": wall,
        "meta_params": {name: value.detach() for name, value in meta_params.items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),  # plain numbers, for torch's schedules
        "generator": generator.get_state(),
        "wandb_id": tracker.run_id,
    }


def _saver(run_dir: Path, world: World):
    """Saves a checkpoint: assembled from every rank's part (all ranks call it), written by rank 0."""
    def save(state: dict) -> None:
        whole = gathered(state, world)
        if world.main:
            save_checkpoint(run_dir, whole)
            log.info(f"checkpoint of meta-step {whole['step']} saved", extra=FILE_ONLY)
    return save


def _outer_optimizer(task, meta_params, optimizer):
    # A task may hand the outer loop to something else after a while (a learned optimizer that
    # trains itself); it gets the configured optimizer to start with.
    return task.outer_optimizer(meta_params, optimizer) if hasattr(task, "outer_optimizer") else optimizer


def _logged_values(task, meta_params) -> dict:
    """What a task shows of θ each logged step (a few scalars; most tasks show nothing)."""
    return task.log_values(meta_params) if hasattr(task, "log_values") else {}


def _floats(metrics: dict) -> dict:
    return {name: float(value) for name, value in metrics.items() if name != "meta_loss"}


def _plain(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def _stop(stop: StopRequest, signum: int, step: int, run_dir: Path, tracker, choices: dict) -> NoReturn:
    """After the checkpoint of `step`: keep it on the dashboard too, say how to continue, and hand
    the signal on."""
    tracker.log_checkpoint(run_dir, step, choices)
    log.info(f"stopped by signal {signum} after meta-step {step}; checkpoint saved: "
             f"continue with `{resume_command(run_dir)}`")
    stop.hand_over(signum)
    raise SystemExit(128 + signum)
