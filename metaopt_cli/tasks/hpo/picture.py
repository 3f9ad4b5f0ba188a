"""schedule.png: the learned learning-rate schedule against the initial one, and the meta-loss
over meta-steps."""
from pathlib import Path

import matplotlib.pyplot as plt

from ...estimators.problem import Tensors
from ...pictures import save_figure
from ...tracking.metrics_file import read_records
from .hyperparams import Hyperparams


def save_schedule_picture(hyperparams: Hyperparams, learned: Tensors, metrics: Path, path: Path) -> None:
    initial = hyperparams.complete(hyperparams.init_meta_params(next(iter(learned.values())).device))
    records = read_records(metrics)
    fig, (schedule, meta_loss) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = range(hyperparams.horizon)
    schedule.plot(steps, hyperparams.lr_schedule(initial).detach().cpu(), "--", label="initial")
    schedule.plot(steps, hyperparams.lr_schedule(learned).detach().cpu(), label="learned")
    schedule.set_yscale("log")
    schedule.set_xlabel("inner step t")
    schedule.set_ylabel("learning rate")
    schedule.set_title(f"schedule ({hyperparams.schedule})")
    schedule.legend()
    meta_loss.plot([r["step"] for r in records], [r["meta_loss"] for r in records], linewidth=0.8)
    meta_loss.set_xlabel("meta-step")
    meta_loss.set_ylabel("meta-loss (validation)")
    save_figure(fig, path)
