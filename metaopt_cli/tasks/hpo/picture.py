"""schedule.png: the learned learning-rate schedule against the initial one and the searches'
best, the meta-loss over meta-steps, and the retrained networks' scores side by side."""
from pathlib import Path

import matplotlib.pyplot as plt

from ...estimators.problem import Tensors
from ...pictures import save_figure
from ...tracking.metrics_file import read_records
from .hyperparams import Hyperparams

# Each scored setting as the picture names and draws it.
STYLES = {"initial": ("initial", "--"), "random_search": ("random search", ":"),
          "bayes_opt": ("TPE", "-."), "learned": ("learned", "-")}


def save_schedule_picture(hyperparams: Hyperparams, scored: dict[str, Tensors], results: dict[str, float],
                          metrics: Path, path: Path) -> None:
    """`scored`: the settings to draw, θ's form completed ("learned" at least; the initial one is
    added); `results`: the evaluation's figures (empty: no comparison panel)."""
    learned = scored["learned"]
    scored = {"initial": hyperparams.complete(hyperparams.init_meta_params(next(iter(learned.values())).device)),
              **scored}
    records = read_records(metrics)
    fig, axes = plt.subplots(1, 3 if results else 2, figsize=(15 if results else 10, 3.5))
    schedule, meta_loss = axes[:2]
    steps = range(hyperparams.horizon)
    for name, (label, style) in STYLES.items():
        if name in scored:
            schedule.plot(steps, hyperparams.lr_schedule(scored[name]).detach().cpu(), style, label=label)
    schedule.set_yscale("log")
    schedule.set_xlabel("inner step t")
    schedule.set_ylabel("learning rate")
    schedule.set_title(f"schedule ({hyperparams.schedule})")
    schedule.legend()
    meta_loss.plot([r["step"] for r in records], [r["meta_loss"] for r in records], linewidth=0.8)
    meta_loss.set_xlabel("meta-step")
    meta_loss.set_ylabel("meta-loss (validation)")
    if results:
        _comparison(axes[2], results)
    save_figure(fig, path)


def _comparison(ax, results: dict[str, float]) -> None:
    """Validation and test loss of the networks retrained with each setting, mean ± std over seeds."""
    names = [name for name in STYLES if f"{name}_test_loss" in results]
    width = 0.4
    for offset, split in ((-width / 2, "val"), (width / 2, "test")):
        ax.bar([i + offset for i in range(len(names))], [results[f"{n}_{split}_loss"] for n in names], width,
               yerr=[results[f"{n}_{split}_loss_std"] for n in names], capsize=3, label=split)
    ax.set_xticks(range(len(names)), [STYLES[name][0] for name in names])
    ax.set_ylabel("loss after retraining")
    ax.set_title(f"same budget: {results.get('random_search_inner_steps', '?')} inner steps per search")
    ax.legend()
