"""Checks of a backbone's size knobs, so that a zero or negative width fails with the knob's name
rather than deep inside torch."""
from collections.abc import Sequence

from metaopt_cli.errors import UserError


def check_widths(knob: str, value: int | Sequence[int]) -> None:
    """`backbone.<knob>`, a width or a list of them, must be at least 1 throughout."""
    widths = [value] if isinstance(value, int) else list(value)
    if any(int(w) < 1 for w in widths):
        raise UserError(f"backbone.{knob} sets layer widths, each at least 1, got {value}")


def check_dropout(rate: float) -> None:
    if not 0 <= rate < 1:
        raise UserError(f"backbone.dropout is the probability of zeroing a unit and must be in [0, 1), got {rate}")
