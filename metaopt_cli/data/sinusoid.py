"""Sinusoid regression, MAML's few-shot regression benchmark (Finn et al. 2017, §5.1).

Each task is y = A·sin(x − φ) with A ~ U[0.1, 5] and φ ~ U[0, π]; its K support and Q query points are drawn
independently from x ~ U[−5, 5]. MAML used K = 10 (and 5, 20) and scored a task on fresh points of the same
sine, which the query set is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from metaopt_cli.data.episodes import Episodes
from metaopt_cli.errors import UserError


@dataclass(frozen=True)
class SinusoidTasks:
    name = "sinusoid"  # a class attribute, not a field: what the summary calls the data
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)
    shots: int = 10
    queries: int = 10
    dtype: torch.dtype = torch.float32  # of the x and y drawn

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """One scalar x per example, shaped like a 1×1 single-channel image for the backbones."""
        return (1, 1, 1)

    def to(self, device, dtype: torch.dtype | None = None) -> SinusoidTasks:
        """Tasks are drawn on the generator's device, so there is nothing to move; they are drawn in `dtype`."""
        return self if dtype is None else replace(self, dtype=dtype)

    def sample(self, count: int, generator: torch.Generator, split: str = "train") -> Episodes:
        """`count` tasks: x and y [count, shots, 1] for the support set, [count, queries, 1] for the query set.

        Every meta-split draws from the same distribution; meta-val's tasks come from a stream of their own,
        seeded by one draw of `generator`, so that validating never scores the tasks of the meta-test report
        even when both are handed generators in the same state (as a run's evaluations are).
        """
        device = generator.device
        if split == "val":
            seed = int(torch.randint(2**62, (), generator=generator, device=device))
            generator = torch.Generator(device).manual_seed(seed)

        def uniform(bounds: tuple[float, float], *shape: int) -> torch.Tensor:
            low, high = bounds
            return low + (high - low) * torch.rand(*shape, generator=generator, device=device, dtype=self.dtype)

        amplitude = uniform(self.amplitude, count, 1, 1)
        phase = uniform(self.phase, count, 1, 1)
        support_x = uniform(self.x_range, count, self.shots, 1)
        query_x = uniform(self.x_range, count, self.queries, 1)
        return Episodes(
            support_x=support_x,
            support_y=amplitude * torch.sin(support_x - phase),
            query_x=query_x,
            query_y=amplitude * torch.sin(query_x - phase),
        )


def load(
    amplitude_min: float = 0.1,
    amplitude_max: float = 5.0,
    phase_min: float = 0.0,
    phase_max: float = math.pi,
    x_min: float = -5.0,
    x_max: float = 5.0,
    shots: int = 10,
    queries: int = 10,
) -> SinusoidTasks:
    for low, high, knob in (
        (amplitude_min, amplitude_max, "amplitude"),
        (phase_min, phase_max, "phase"),
        (x_min, x_max, "x"),
    ):
        if low > high:
            raise UserError(f"data.{knob}_min={low} is above data.{knob}_max={high}: swap them")
    for knob, value in (("shots", shots), ("queries", queries)):
        if value < 1:
            raise UserError(f"data.{knob}={value} must be at least 1")
    return SinusoidTasks((amplitude_min, amplitude_max), (phase_min, phase_max), (x_min, x_max), shots, queries)
