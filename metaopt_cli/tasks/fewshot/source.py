"""Where a few-shot task's episodes come from, whatever `data` was chosen."""
from dataclasses import dataclass

import torch

from ...data.episodes import Episodes, FewShotData, check_episodes, class_disjoint, sample_episodes
from ...data.sinusoid import SinusoidTasks
from ...data.splits import SplitData
from ...errors import UserError


@dataclass
class EpisodeSource:
    """N-way K-shot classification episodes from class-disjoint splits, or regression tasks."""

    data: FewShotData | SinusoidTasks
    ways: int
    shots: int
    queries: int

    # Meta-training's episodes where they differ from meta-val's and meta-test's (ProtoNet trains
    # 30-way, MetaOptNet 15-shot, for 5-way 1-shot tests): (ways, shots, queries), or None.
    train_shape: tuple[int, int, int] | None = None

    @classmethod
    def of(cls, data, ways: int, shots: int, queries: int, split_seed: int,
           train_shape: tuple[int, int, int] | None = None) -> "EpisodeSource":
        for name, value in (("ways", ways), ("shots", shots), ("queries", queries)):
            if value < 1:
                raise UserError(f"task.{name} must be at least 1, got {value}")
        if isinstance(data, SplitData):
            # A classification dataset: its classes (and their rotations) split class-disjointly.
            data = class_disjoint(data, rotations=True, split_seed=split_seed)
        source = cls(data, ways, shots, queries, train_shape)
        if source.classification:
            for split, phrase in (("train", "meta-train"), ("val", "meta-val"), ("test", "meta-test")):
                knobs = "task.train_" if split == "train" and train_shape is not None else "task."
                check_episodes(getattr(data, split), f"{phrase} split of {data.name}", *source.shape(split), knobs)
        return source

    def shape(self, split: str) -> tuple[int, int, int]:
        """(ways, shots, queries) of the split's episodes."""
        if split == "train" and self.train_shape is not None:
            return self.train_shape
        return self.ways, self.shots, self.queries

    @property
    def classification(self) -> bool:
        return isinstance(self.data, FewShotData)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return self.data.in_shape

    @property
    def num_outputs(self) -> int:
        return self.ways if self.classification else 1

    def sample(self, split: str, count: int, generator: torch.Generator) -> Episodes:
        """`count` episodes of the meta-split `split`: train, val or test."""
        if not self.classification:
            return self.data.sample(count, generator, split)
        return sample_episodes(getattr(self.data, split), *self.shape(split), count, generator)
