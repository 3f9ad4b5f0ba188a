"""meta_test.png: the loss of held-out networks over training steps, with the learned optimizer
and with tuned Adam and SGD; the meta-training horizon marked."""
from pathlib import Path

import matplotlib.pyplot as plt

from ...pictures import save_figure


def save_meta_test_picture(curves: dict[str, list[float]], train_horizon: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, label in (("lopt", "learned optimizer"), ("adam", "Adam (tuned lr)"), ("sgd", "SGD (tuned lr)")):
        ax.plot(curves[name], label=label)
    ax.axvline(train_horizon, color="k", linestyle=":", label="meta-training horizon")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (held-out networks)")
    ax.legend(fontsize=8)
    save_figure(fig, path, "meta-test: held-out networks")
