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

    @classmethod
    def of(cls, data, ways: int, shots: int, queries: int, split_seed: int) -> "EpisodeSource":
        for name, value in (("ways", ways), ("shots", shots), ("queries", queries)):
            if value < 1:
                raise UserError(f"task.{name} must be at least 1, got {value}")
        if isinstance(data, SplitData):
            # A classification dataset: its classes (and their rotations) split class-disjointly.
            data = class_disjoint(data, rotations=True, split_seed=split_seed)
        source = cls(data, ways, shots, queries)
        if source.classification:
            for split, phrase in (("train", "meta-train"), ("val", "meta-val"), ("test", "meta-test")):
                check_episodes(getattr(data, split), f"{phrase} split of {data.name}", ways, shots, queries)
        return source

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
        return sample_episodes(getattr(self.data, split), self.ways, self.shots, self.queries, count, generator)
