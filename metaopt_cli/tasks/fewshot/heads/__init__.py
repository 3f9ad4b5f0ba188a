"""task=protonet's classifiers on the support embeddings ("heads", in MetaOptNet's words): each
fits a classifier to one episode's support embeddings and scores its queries with it, differentiably,
so that the embedding network θ is meta-trained through it.

A head keeps the FewShotHead contract below; HEADS maps task.head to its class, built from the
task's head knobs (each takes those it uses).
"""
from typing import Protocol

import torch

from ....config.tasks import Head
from .proto import PrototypeHead
from .ridge import RidgeHead
from .svm import SVMHead


class FewShotHead(Protocol):
    """Fits a classifier to one episode's support embeddings and scores its queries, differentiably."""

    def init_params(self) -> dict[str, torch.Tensor]:
        """Its own meta-parameters (an output scale, a regulariser), unconstrained, stored in θ under
        `head.<name>` beside the backbone's weights."""

    def logits(self, support: torch.Tensor, one_hot: torch.Tensor, query: torch.Tensor,
               params: dict[str, torch.Tensor]) -> torch.Tensor:
        """[queries, ways] for one episode: support embeddings [n, d] with one-hot labels [n, ways],
        query embeddings [queries, d]. Written for torch.func: the task calls it under vmap over the
        episodes of a meta-batch (and ES under a second vmap, over its particles)."""


HEADS = {Head.proto: PrototypeHead, Head.ridge: RidgeHead, Head.svm: SVMHead}
PREFIX = "head."  # θ's names of a head's own meta-parameters
