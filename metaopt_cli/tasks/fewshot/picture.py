"""sinusoid.png: a meta-test sine wave, the network before and after adapting to its K points."""
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch.func import functional_call

from ...estimators.unroll import unroll
from ...pictures import save_figure


def save_sinusoid_picture(task, meta_params, path: Path) -> None:
    generator = torch.Generator(task.device).manual_seed(0)
    with torch.no_grad():
        problem = task.problem_for(task.source.sample("test", 1, generator), task.test_horizon)
        adapted, _ = unroll(problem, meta_params, problem.init(meta_params), 0, task.test_horizon)
        grid = torch.linspace(-5, 5, 200, device=task.device).unsqueeze(-1)
        params = {n: v for n, v in meta_params.items() if n in dict(task.net.named_parameters())}
        before = functional_call(task.net, params, (grid,))
        after = problem.forward({n: v[0] for n, v in adapted.items()}, meta_params, grid)
    episodes = problem.episodes
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(grid.cpu(), _true_sine(episodes, grid).cpu(), color="gray", linewidth=1, label="true curve")
    ax.scatter(episodes.query_x[0].cpu(), episodes.query_y[0].cpu(), s=12, color="gray", label="query points")
    ax.scatter(episodes.support_x[0].cpu(), episodes.support_y[0].cpu(), s=30, color="k", marker="^",
               label=f"{len(episodes.support_y[0])} support points")
    ax.plot(grid.cpu(), before.cpu(), "--", label="before adaptation (θ)")
    ax.plot(grid.cpu(), after.cpu(), label=f"after {task.test_horizon} steps")
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    save_figure(fig, path, f"a meta-test sine wave: {task.test_horizon} steps of adaptation")


def _true_sine(episodes, grid: torch.Tensor) -> torch.Tensor:
    """The task's sine on `grid`. An episode keeps its points, not its amplitude and phase, but
    A·sin(x − φ) = a·sin x + b·cos x, and noiseless points fix a and b: least squares on them
    recovers the curve exactly."""
    x = torch.cat([episodes.support_x[0], episodes.query_x[0]])
    y = torch.cat([episodes.support_y[0], episodes.query_y[0]])
    coefficients = torch.linalg.lstsq(torch.cat([x.sin(), x.cos()], dim=-1), y).solution
    return torch.cat([grid.sin(), grid.cos()], dim=-1) @ coefficients
