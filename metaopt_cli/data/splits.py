"""The in-memory train/val/test splits every loader returns, and their standardisation."""

from __future__ import annotations

from dataclasses import dataclass

import torch


# eq=False: a generated __eq__ would compare tensors, which have no single truth value.
@dataclass(frozen=True, eq=False)
class Split:
    x: torch.Tensor  # float32 (or trainer.dtype) [N, C, H, W]
    y: torch.Tensor  # int64 [N]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Split:
        """On `device`, with the inputs in `dtype` (unchanged if None); labels stay int64."""
        return Split(self.x.to(device, dtype=dtype), self.y.to(device))


@dataclass(frozen=True, eq=False)
class SplitData:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one example."""
        c, h, w = self.train.x.shape[1:]
        return (c, h, w)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> SplitData:
        return SplitData(
            self.name, self.train.to(device, dtype), self.val.to(device, dtype), self.test.to(device, dtype),
            self.num_classes,
        )


def make_split_data(name: str, train: Split, val: Split, test: Split, num_classes: int) -> SplitData:
    """Standardise raw [N, C, H, W] pixels per channel with the train split's statistics.

    Only train statistics are used so that nothing about val/test leaks into the inputs.
    """
    train_x = train.x.float()
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    # A channel that is constant over the train split would otherwise divide by zero.
    std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)

    def standardise(split: Split) -> Split:
        return Split((split.x.float() - mean) / std, split.y.long())

    return SplitData(name, standardise(train), standardise(val), standardise(test), num_classes)
