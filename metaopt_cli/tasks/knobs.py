"""Checks of a task's numeric settings, so that a bad one fails at start-up with the knob's name."""
import math

from ..errors import UserError


def check_positive(**knobs: float) -> None:
    """Each `task.<name>` must be positive and finite."""
    for name, value in knobs.items():
        if not 0 < value < math.inf:
            raise UserError(f"task.{name} must be positive and finite, got {value}")
