"""The smallest image a convolutional backbone can take."""
from metaopt_cli.errors import UserError


def check_image_size(backbone: str, in_shape: tuple[int, int, int], halvings: int) -> None:
    """Each halving of the feature map needs at least 2 pixels left to halve."""
    _, height, width = in_shape
    smallest = 2**halvings
    if height < smallest or width < smallest:
        raise UserError(
            f"{backbone} halves the image {halvings} times and needs images of at least "
            f"{smallest}×{smallest}, but the data is {height}×{width}: use backbone=mlp, a larger dataset, or "
            f"data.image_size={max(smallest, 32)} where the data has it (digits are upsampled)"
        )
