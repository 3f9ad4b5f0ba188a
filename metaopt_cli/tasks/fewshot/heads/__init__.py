"""task=protonet's classifiers on the support embeddings ("heads", in MetaOptNet's words): each
fits a classifier to one episode's support embeddings and scores its queries with it, differentiably,
so that the embedding network θ is meta-trained through it.

A head is a class with
  - `init_params() -> dict[str, Tensor]`: its own meta-parameters (an output scale, a regulariser),
    unconstrained, stored in θ under `head.<name>` beside the backbone's weights;
  - `logits(support, one_hot, query, params) -> [queries, ways]`: one episode (embeddings [n, d],
    one-hot labels [n, ways], [queries, d]), written with torch.func in mind: the task calls it
    under vmap over the episodes of a meta-batch (and ES under a second vmap, over its particles).
"""
from ....config.tasks import Head
from .proto import PrototypeHead
from .ridge import RidgeHead
from .svm import SVMHead

HEADS = {Head.proto: PrototypeHead, Head.ridge: RidgeHead, Head.svm: SVMHead}
PREFIX = "head."  # θ's names of a head's own meta-parameters
