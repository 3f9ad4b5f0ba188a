"""cell.png: the derived cells, nodes and edges labelled with their operations; alphas.png:
α's softmax weights on every edge over the meta-steps, read back from metrics.jsonl, where the
task's log_values writes them as `alpha_<cell>_<edge>_<op>` while task.log_alphas is on."""
import re
from pathlib import Path

import matplotlib.pyplot as plt

from ...estimators.problem import Tensors
from ...pictures import save_figure
from ...tracking.metrics_file import read_records
from .genotype import Genotype, derive

ALPHA_KEY = re.compile(r"alpha_(normal|reduce)_(\d+)_(.+)")
INPUT_NAMES = ("c_{k-2}", "c_{k-1}")  # a cell's two inputs, as DARTS's figures name them


def save_cell_picture(genotype: Genotype, path: Path) -> None:
    """Each cell as DARTS draws it: the two inputs on the left, the intermediate nodes in a row,
    the output (their concatenation) on the right; every chosen edge an arrow labelled with its
    operation."""
    fig, axes = plt.subplots(len(genotype), 1, figsize=(11, 4 * len(genotype)), squeeze=False)
    for ax, (cell, nodes) in zip(axes[:, 0], genotype.items()):
        _draw_cell(ax, cell, nodes)
    save_figure(fig, path, "derived cells (top-k operations per node, none excluded)")


def _draw_cell(ax, cell: str, nodes: list) -> None:
    count = len(nodes)
    ax.set_xlim(-0.5, count + 1.5)  # before any arrow: labels are placed in display space
    ax.set_ylim(-1.6, 1.6)
    places = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    places.update({i + 2: (1.0 + i, 0.6 * (-1) ** i) for i in range(count)})
    output = (count + 1.0, 0.0)
    for node, pairs in enumerate(nodes):
        for op, source in pairs:
            # Bend edges that skip over nodes so that they do not run through them.
            bend = 0.0 if source in (0, 1) or source == node + 1 else 0.35
            _arrow(ax, places[source], places[node + 2], op, bend)
        _arrow(ax, places[node + 2], output, "", 0.0, color="0.6")
    for index, (x, y) in places.items():
        label = INPUT_NAMES[index] if index < 2 else str(index - 2)
        ax.text(x, y, f"${label}$" if index < 2 else label, ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round", facecolor="lightgreen" if index < 2 else "lightblue"))
    ax.text(*output, "$c_{k}$", ha="center", va="center", fontsize=11, bbox=dict(boxstyle="round", facecolor="khaki"))
    ax.set_title(f"{cell} cell")
    ax.axis("off")


def _arrow(ax, start, end, label: str, bend: float, color: str = "black") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color=color, shrinkA=14, shrinkB=14,
                                                          connectionstyle=f"arc3,rad={bend}"))
    if label:
        # The label sits on the arc's midpoint: arc3 bends the chord in display space, by half
        # of rad times the chord turned clockwise.
        (x0, y0), (x1, y1) = ax.transData.transform([start, end])
        middle = ((x0 + x1) / 2 + bend * (y1 - y0) / 2, (y0 + y1) / 2 - bend * (x1 - x0) / 2)
        x, y = ax.transData.inverted().transform(middle)
        ax.text(x, y, label, ha="center", va="center", fontsize=8, color="darkred",
                bbox=dict(boxstyle="round,pad=0.1", facecolor="white", edgecolor="none", alpha=0.8))


def save_alphas_picture(space, metrics: Path, path: Path) -> bool:
    """One panel per edge (rows: each cell's nodes; columns: the node's inputs), one line per
    operation. False, and no picture, where metrics.jsonl holds no α (task.log_alphas=false)."""
    records = [r for r in read_records(metrics) if any(ALPHA_KEY.fullmatch(key) for key in r)]
    if not records:
        return False
    steps = [r["step"] for r in records]
    rows = [(cell, node) for cell in space.cell_kinds for node in range(space.nodes)]
    columns = space.nodes + 1  # the last node's inputs
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.6 * columns, 1.9 * len(rows)), squeeze=False,
                             sharex=True, sharey=True)
    for ax in axes.flat:
        ax.axis("off")
    for e, (node, source) in enumerate(space.edges):
        for cell in space.cell_kinds:
            ax = axes[rows.index((cell, node)), source]
            ax.axis("on")
            for op in space.operations:
                ax.plot(steps, [r[f"alpha_{cell}_{e}_{op}"] for r in records], label=op, linewidth=1)
            ax.set_title(f"{cell}: {_input_name(source)} → node {node}", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("softmax(α)")
    axes[-1, 0].set_xlabel("meta-step")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8)  # over the top row's empty panels
    save_figure(fig, path, "α's operation weights per edge over meta-steps")
    return True


def _input_name(source: int) -> str:
    return INPUT_NAMES[source] if source < 2 else f"node {source - 2}"


def save_search_pictures(task, meta_params: Tensors, run_dir: Path, out_dir: Path) -> list[Path]:
    """cell.png, and alphas.png where the run logged α (task.log_alphas): the paths written."""
    paths = [out_dir / "cell.png"]
    save_cell_picture(derive(meta_params, task.space, task.top_k), paths[0])
    if save_alphas_picture(task.space, run_dir / "metrics.jsonl", out_dir / "alphas.png"):
        paths.append(out_dir / "alphas.png")
    return paths
