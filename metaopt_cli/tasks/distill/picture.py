"""distilled.png: the synthetic images, one row per class."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs headless, on clusters and in CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def save_distilled_picture(images: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    images = images.detach().float().cpu()
    classes = labels.unique().tolist()
    per_class = len(labels) // len(classes)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(1.2 * per_class, 1.2 * len(classes)), squeeze=False)
    for row, label in enumerate(classes):
        for col, image in enumerate(images[(labels == label).cpu()]):
            # Images live in standardised units; stretch each to [0, 1] to show its pattern.
            image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-8)
            ax = axes[row][col]
            ax.imshow(image.permute(1, 2, 0).squeeze(-1), cmap="gray" if image.shape[0] == 1 else None)
            ax.set_xticks([]), ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(str(label))
    fig.suptitle("distilled images")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
