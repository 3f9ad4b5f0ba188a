"""compare.png: each group's meta-loss against the meta-step, mean over its seeds, with its spread
(95% CI or sample std, as the table's)."""
from pathlib import Path

import matplotlib.pyplot as plt

from ..pictures import save_figure
from .groups import Group, distinguishing, label
from .interval import SPREADS


def save_meta_loss_picture(groups: list[Group], path: Path, spread: str = "ci95") -> None:
    """Written to `path` as PNG whatever its name (the caller writes beside the file and renames)."""
    keys = distinguishing(groups)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for group in groups:
        curve = group.meta_loss()
        if not curve:
            continue
        drawn = True
        steps = [step for step, _ in curve]
        means = [value.mean for _, value in curve]
        runs = sum(bool(run.meta_loss) for run in group.runs)
        line, = ax.plot(steps, means, label=f"{label(group, keys)} (n={runs})")
        # Where a single run got that far there is no interval: the band stops there.
        half = [value.spread(spread) if value.spread(spread) is not None else float("nan") for _, value in curve]
        ax.fill_between(steps, [m - h for m, h in zip(means, half)], [m + h for m, h in zip(means, half)],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    if drawn:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no meta-step logged yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("meta-step")
    ax.set_ylabel("meta-loss")
    ax.set_title(f"meta-loss per group: mean, band ± {SPREADS[spread]}")
    ax.grid(True, alpha=0.3)
    save_figure(fig, path)
