"""bench.png: peak memory and seconds against the horizon K, one line per estimator."""
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib import ticker

from .pictures import save_figure


def save_bench_plot(rows: list[dict], path: Path) -> None:
    fig, (memory, seconds) = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(row["estimator"] for row in rows):
        cells = sorted((row for row in rows if row["estimator"] == name), key=lambda row: row["horizon"])
        horizons = [row["horizon"] for row in cells]
        memory.plot(horizons, [row["peak_mem_bytes"] / 2**20 for row in cells], marker="o", label=name)
        seconds.plot(horizons, [row["seconds"] for row in cells], marker="o", label=name)
    for ax, label in ((memory, "peak memory (MiB)"), (seconds, "seconds per estimate")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Plain numbers, which a range of less than a decade also gets: the horizons measured
        # on x, and 0.5, 1, 2, 5, … rather than 5×10⁻¹ on y.
        ax.set_xticks(sorted({row["horizon"] for row in rows}))
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("horizon K (inner steps)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    save_figure(fig, path, "one meta-gradient estimate per estimator")
