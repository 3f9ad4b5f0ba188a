"""distilled.png: the synthetic images, one column per class."""
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from ...pictures import save_figure


def save_distilled_picture(images: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    images, labels = images.detach().float().cpu(), labels.cpu()
    classes = labels.unique().tolist()
    per_class = len(labels) // len(classes)
    fig, axes = plt.subplots(per_class, len(classes), figsize=(1.1 * len(classes), 1.1 * per_class + 0.6),
                             squeeze=False)
    for col, label in enumerate(classes):
        for row, image in enumerate(images[labels == label]):
            # Images live in standardised units; stretch each to [0, 1] to show its pattern.
            image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-8)
            ax = axes[row][col]
            ax.imshow(image.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if image.shape[0] == 1 else None)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(str(label))
    save_figure(fig, path, f"distilled images ({per_class} per class)")
