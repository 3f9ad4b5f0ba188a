"""The distilled set as meta-parameters: images, and optionally soft labels and the inner
learning rate, stored unconstrained (label logits, log lr) so any estimator can move them."""
import math
from dataclasses import dataclass

import torch

from ...data.splits import SplitData
from ...estimators.problem import Tensors


@dataclass
class SyntheticSet:
    labels: torch.Tensor  # the class of each synthetic image
    inner_lr: float  # the fixed inner lr, or the initial one when it is learned
    learn_labels: bool
    learn_lr: bool

    def init_meta_params(self, images: torch.Tensor, num_classes: int) -> Tensors:
        meta_params = {"images": images.clone()}
        if self.learn_labels:
            # Start from soft labels that favour the class (softmax puts about 0.7 on it).
            meta_params["label_logits"] = 3.0 * torch.nn.functional.one_hot(self.labels, num_classes).to(images.dtype)
        if self.learn_lr:
            meta_params["log_lr"] = torch.tensor(math.log(self.inner_lr), device=images.device)
        return meta_params

    def unpack(self, meta_params: Tensors) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float]:
        """(images, training targets, inner lr) as the inner loop uses them."""
        targets = meta_params["label_logits"].softmax(-1) if self.learn_labels else self.labels
        lr = meta_params["log_lr"].exp() if self.learn_lr else self.inner_lr
        return meta_params["images"], targets, lr


def random_real_images(data: SplitData, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random training image of each label's class, per label, without repeats."""
    picks = []
    for label in labels.unique():
        pool = (data.train.y == label).nonzero().squeeze(1)
        order = torch.randperm(len(pool), generator=generator, device=generator.device).to(pool.device)
        picks.append(pool[order[: int((labels == label).sum())]])
    return data.train.x[torch.cat(picks)]
