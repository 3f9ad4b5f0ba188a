"""Few-shot data: examples grouped by class, class-disjoint meta-splits, and batches of N-way K-shot episodes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from metaopt_cli.data.splits import SplitData
from metaopt_cli.errors import UserError


@dataclass(frozen=True, eq=False)
class ClassPool:
    """The examples of a set of classes, grouped by class.

    The classes are stored as consecutive rows of one tensor, so that an episode is one gather rather than a
    Python loop over classes; `images[c]` are views into it.
    """

    images: list[torch.Tensor]  # images[c]: [n_c, C, H, W] float32 (or trainer.dtype), standardised
    _flat: torch.Tensor = field(init=False, repr=False)  # [sum n_c, C, H, W]
    _counts: tuple[int, ...] = field(init=False, repr=False)  # n_c, kept in Python so reading them never syncs
    _sizes: torch.Tensor = field(init=False, repr=False)  # int64 [num_classes]: n_c
    _offsets: torch.Tensor = field(init=False, repr=False)  # int64 [num_classes]: the first row of each class

    def __post_init__(self) -> None:
        counts = tuple(len(x) for x in self.images)
        flat = _flatten(self.images)
        sizes = torch.tensor(counts, dtype=torch.int64, device=flat.device)
        # frozen: these are derived once, here, and never change.
        object.__setattr__(self, "images", list(flat.split(counts)))
        object.__setattr__(self, "_flat", flat)
        object.__setattr__(self, "_counts", counts)
        object.__setattr__(self, "_sizes", sizes)
        object.__setattr__(self, "_offsets", sizes.cumsum(0) - sizes)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ClassPool:
        return ClassPool(list(self._flat.to(device, dtype=dtype).split(self._counts)))

    @property
    def num_classes(self) -> int:
        return len(self._counts)

    @property
    def smallest(self) -> int:
        """The number of examples of the class that has fewest."""
        return min(self._counts)


@dataclass(frozen=True, eq=False)
class FewShotData:
    name: str
    train: ClassPool  # meta-train, meta-val and meta-test share no class
    val: ClassPool
    test: ClassPool

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one example."""
        c, h, w = self.train.images[0].shape[1:]
        return (c, h, w)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> FewShotData:
        return FewShotData(self.name, *(pool.to(device, dtype) for pool in (self.train, self.val, self.test)))


@dataclass(frozen=True, eq=False)
class Episodes:
    """A batch of tasks stacked on a leading task axis B.

    Classification: x [B, N*K, C, H, W] and int64 labels [B, N*K] in 0..N-1, class-major (the K shots of
    label 0, then of label 1, ...); the query set likewise with Q per class. Regression: x and y [B, K, 1].
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    def select(self, tasks: range) -> Episodes:
        """The tasks `tasks` alone."""
        return Episodes(*(t[tasks.start:tasks.stop] for t in (self.support_x, self.support_y, self.query_x, self.query_y)))

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Episodes:
        """On `device`, with the inputs (and real-valued targets) in `dtype`; class labels stay int64."""
        return Episodes(*(t.to(device, dtype=dtype if t.is_floating_point() else None)
                          for t in (self.support_x, self.support_y, self.query_x, self.query_y)))


def sample_episodes(
    pool: ClassPool, ways: int, shots: int, queries: int, count: int, generator: torch.Generator
) -> Episodes:
    """`count` N-way K-shot tasks with Q queries per class; all randomness from `generator`.

    Each task draws `ways` classes without replacement and `shots + queries` distinct examples of each, so
    support and query never share an example; label n is the task's n-th class in random order. Random keys
    sorted per row stand in for per-row permutations, so nothing reads a tensor value back into Python.
    Call check_episodes first: a class with fewer than shots + queries examples is not caught here.
    """
    device = generator.device
    sizes, offsets = pool._sizes, pool._offsets
    if device != sizes.device:  # rebuilt from the Python counts: copying them would wait on the pool's device
        sizes = torch.tensor(pool._counts, dtype=torch.int64, device=device)
        offsets = sizes.cumsum(0) - sizes
    per_class = shots + queries

    class_keys = torch.rand(count, pool.num_classes, generator=generator, device=device)
    classes = class_keys.argsort(dim=1)[:, :ways]  # [B, N]

    example_keys = torch.rand(count, ways, max(pool._counts), generator=generator, device=device)
    # Keys past a class's last example sort after every real key (which are below 1), so they are never picked.
    beyond = torch.arange(example_keys.shape[-1], device=device) >= sizes[classes].unsqueeze(-1)
    picks = example_keys.masked_fill(beyond, 2.0).argsort(dim=-1)[..., :per_class]  # [B, N, K+Q]

    rows = (offsets[classes].unsqueeze(-1) + picks).to(pool._flat.device)
    x = pool._flat[rows]  # [B, N, K+Q, C, H, W]
    in_shape = x.shape[3:]
    labels = torch.arange(ways, device=x.device).unsqueeze(-1)
    return Episodes(
        support_x=x[:, :, :shots].reshape(count, ways * shots, *in_shape),
        support_y=labels.expand(ways, shots).reshape(1, -1).expand(count, -1).contiguous(),
        query_x=x[:, :, shots:].reshape(count, ways * queries, *in_shape),
        query_y=labels.expand(ways, queries).reshape(1, -1).expand(count, -1).contiguous(),
    )


def check_episodes(pool: ClassPool, split: str, ways: int, shots: int, queries: int, knobs: str = "task.") -> None:
    """Raise a UserError if `pool` cannot give N-way tasks of K shots and Q queries.

    `split` names the pool in the message, e.g. "meta-test split of omniglot"; `knobs` prefixes the
    settings it names ("task.train_": meta-training's own episodes).
    """
    for knob, value in (("ways", ways), ("shots", shots), ("queries", queries)):
        if value < 1:
            raise UserError(f"{knobs}{knob}={value} must be at least 1")
    if pool.num_classes < ways:
        raise UserError(
            f"{ways}-way tasks need at least {ways} classes, but the {split} has {pool.num_classes}: lower {knobs}ways"
        )
    if pool.smallest < shots + queries:
        raise UserError(
            f"{shots} shot{'s' * (shots != 1)} + {queries} quer{'ies' if queries != 1 else 'y'} need "
            f"{shots + queries} examples of every class, but a class of the {split} has only {pool.smallest}: "
            f"lower {knobs}queries or {knobs}shots"
        )


def make_few_shot_data(
    name: str, train: list[torch.Tensor], val: list[torch.Tensor], test: list[torch.Tensor]
) -> FewShotData:
    """Standardise raw per-class [n_c, C, H, W] pixels per channel with the meta-train classes' statistics.

    Only meta-train statistics are used so that nothing about the held-out classes leaks into the inputs.
    Each split is written into one preallocated tensor, so a large dataset is never held twice: float32 for
    raw integer pixels, the inputs' own dtype when they are already real numbers (float64 under
    trainer.dtype=float64, where class_disjoint re-splits standardised data).
    """
    dtype = train[0].dtype if train[0].is_floating_point() else torch.float32
    count = sum(len(x) for x in train)
    total = sum(x.double().sum(dim=(0, 2, 3)) for x in train)
    squares = sum(x.double().square().sum(dim=(0, 2, 3)) for x in train)
    pixels = count * train[0].shape[2] * train[0].shape[3]
    mean = total / pixels
    # A channel that is constant over meta-train would otherwise divide by zero.
    std = ((squares - pixels * mean.square()) / max(pixels - 1, 1)).clamp_min(0).sqrt().clamp_min(1e-8)
    mean, std = mean.to(dtype).view(1, -1, 1, 1), std.to(dtype).view(1, -1, 1, 1)

    def standardise(classes: list[torch.Tensor]) -> ClassPool:
        flat = torch.empty(sum(len(x) for x in classes), *classes[0].shape[1:], dtype=dtype)
        start = 0
        for x in classes:
            flat[start : start + len(x)] = (x.to(dtype) - mean) / std
            start += len(x)
        return ClassPool(list(flat.split([len(x) for x in classes])))

    return FewShotData(name, standardise(train), standardise(val), standardise(test))


def class_disjoint(
    data: SplitData, rotations: bool, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), split_seed: int = 0
) -> FewShotData:
    """Turn a classification dataset into class-disjoint meta-train/val/test splits.

    All examples of data.train, data.val and data.test are pooled by class, and the classes are dealt to
    meta-train/val/test in `fractions` by a permutation fixed by `split_seed`. With `rotations`, each class
    also appears rotated by 90, 180 and 270 degrees as three more classes, as in Omniglot; the four
    rotations of a class go to the same split, as Omniglot's rotated characters do, so that no meta-test
    class is a rotation of a meta-train one. The embedded digits give 6/2/2 digits, 24/8/8 classes.
    """
    if not (len(fractions) == 3 and all(f > 0 for f in fractions) and abs(sum(fractions) - 1) < 1e-6):
        raise UserError(
            f"the meta-train/val/test class fractions {list(fractions)} must be three positive numbers that sum to 1"
        )
    counts = [round(f * data.num_classes) for f in fractions[:2]]
    counts.append(data.num_classes - sum(counts))
    if min(counts) < 1:
        raise UserError(
            f"the meta-train/val/test class fractions {list(fractions)} leave a meta-split of {data.name}'s "
            f"{data.num_classes} classes empty: raise the smallest fraction"
        )
    x = torch.cat([data.train.x, data.val.x, data.test.x])
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    order = torch.randperm(data.num_classes, generator=torch.Generator().manual_seed(split_seed)).tolist()
    turns = range(4) if rotations else range(1)

    def classes(chosen: list[int]) -> list[torch.Tensor]:
        return [torch.rot90(x[y == c], k, dims=(2, 3)) for c in chosen for k in turns]

    train, val, test = order[: counts[0]], order[counts[0] : counts[0] + counts[1]], order[counts[0] + counts[1] :]
    return make_few_shot_data(data.name, classes(train), classes(val), classes(test))


def _flatten(images: list[torch.Tensor]) -> torch.Tensor:
    """The one tensor whose consecutive rows are `images`: their own storage when they are already its
    consecutive slices (as after a split), else a concatenated copy."""
    base = images[0]._base
    if base is not None and base.is_contiguous() and all(x._base is base and x.is_contiguous() for x in images):
        offsets = [x.storage_offset() for x in images]
        starts = [base.storage_offset()]
        for x in images[:-1]:
            starts.append(starts[-1] + x.numel())
        if offsets == starts and sum(x.numel() for x in images) == base.numel():
            return base
    return torch.cat(images)
