"""sinusoid.png: a meta-test sine wave, the network before and after adapting to its K points."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs headless, on clusters and in CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch.func import functional_call  # noqa: E402

from ...estimators.unroll import unroll  # noqa: E402


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
    ax.scatter(episodes.query_x[0].cpu(), episodes.query_y[0].cpu(), s=12, color="gray", label="query points")
    ax.scatter(episodes.support_x[0].cpu(), episodes.support_y[0].cpu(), s=30, color="k", marker="^",
               label=f"{len(episodes.support_y[0])} support points")
    ax.plot(grid.cpu(), before.cpu(), "--", label="before adaptation (θ)")
    ax.plot(grid.cpu(), after.cpu(), label=f"after {task.test_horizon} steps")
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
