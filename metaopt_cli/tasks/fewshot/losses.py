"""The few-shot losses and scores, per task, for classification and regression."""
import torch
import torch.nn.functional as F

from ...errors import UserError


def task_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on class labels, mean squared error on real-valued targets."""
    if targets.is_floating_point():
        return F.mse_loss(outputs, targets)
    return F.cross_entropy(outputs, targets)


def task_score(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Accuracy on class labels, mean squared error on real-valued targets."""
    if targets.is_floating_point():
        return F.mse_loss(outputs, targets)
    return (outputs.argmax(-1) == targets).float().mean()


def mean_ci95(values: torch.Tensor) -> tuple[float, float]:
    """The mean and the half-width of its 95% confidence interval (1.96 standard errors),
    as few-shot papers report over their test episodes."""
    values = values.double()
    return values.mean().item(), (1.96 * values.std() / len(values) ** 0.5).item()


def check_test_episodes(test_episodes: int) -> None:
    """One episode has no spread: its confidence interval would be a NaN."""
    if test_episodes < 2:
        raise UserError(f"task.test_episodes must be at least 2 for a 95% confidence interval, got {test_episodes}: "
                        "the field reports 600 (task.test_episodes=600)")
