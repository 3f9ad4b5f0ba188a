"""Differentiable Siamese augmentation (Zhao & Bilen, "Dataset Condensation with Differentiable
Siamese Augmentation", ICML 2021).

Distillation compares a real batch with the synthetic batch it is matched against (their
gradients, or the trajectories they train). DSA augments both with the SAME randomly drawn
transform — one draw per batch, shared by all its images — so that the comparison still lines up
image statistics with image statistics, and every transform is differentiable in the images, so
that the meta-gradient reaches the synthetic pixels through it.

Randomness is drawn once, at sample time (`draw`: `count` independent draws as tensors with a
leading axis, e.g. one per inner step); `augment` applies one draw (a slice) to a batch with
plain tensor ops, so it runs under `torch.func.vmap` and to any order of differentiation.

As in the paper's default (its strategy color_crop_cutout_flip_scale_rotate in its "single"
mode), each draw applies ONE transform group chosen uniformly among those switched on; `compose`
applies all of them at once instead. The ranges are the paper's: brightness ±0.5, saturation
×[0, 2], contrast ×[0.5, 1.5], translation up to 1/8 of the side in whole pixels, flip with
probability 1/2, scale ×[1/1.2, 1.2] per axis, rotation ±15°, a cutout square of half the side.
Translation, flip, scale and rotation are one affine map, sampled with one `grid_sample`.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]
TRANSFORMS = ("color", "crop", "cutout", "flip", "scale", "rotate")
SPATIAL = ("crop", "flip", "scale", "rotate")


@dataclass(frozen=True)
class SiameseAugment:
    transforms: tuple[str, ...] = TRANSFORMS  # the ones switched on
    compose: bool = False  # all switched-on transforms per draw, instead of one of them
    brightness: float = 1.0  # added: uniform in ±brightness/2
    saturation: float = 2.0  # channel spread scaled by uniform [0, saturation]
    contrast: float = 0.5  # spread around the image mean scaled by uniform [1 − c, 1 + c]
    crop: float = 0.125  # largest translation, as a fraction of the side (rounded to whole pixels)
    flip: float = 0.5  # probability of a horizontal flip
    scale: float = 1.2  # each axis scaled by uniform [1/scale, scale]
    rotate: float = 15.0  # degrees, uniform in ±rotate
    cutout: float = 0.5  # side of the zeroed square, as a fraction of the image side

    def __post_init__(self):
        unknown = set(self.transforms) - set(TRANSFORMS)
        if unknown or not self.transforms:
            raise ValueError(f"transforms must be a non-empty subset of {TRANSFORMS}, got {self.transforms}")

    def draw(self, generator: torch.Generator, count: int, device, image_size: tuple[int, int],
             dtype: torch.dtype | None = None) -> Params:
        """`count` independent draws, each a dict entry with a leading axis of `count`: what
        `augment` needs for images of `image_size` (height, width). Only the switched-on groups
        have entries; a draw whose chosen transform is not in a group holds that group's identity."""
        dtype = dtype or torch.get_default_dtype()

        def u(*shape: int) -> torch.Tensor:  # uniform [0, 1), one row per draw
            return torch.rand(count, *shape, generator=generator, device=device, dtype=dtype)

        on = self._chosen(generator, count, device)
        params = identity(count, image_size, device, dtype, groups=self._groups())
        if "color" in on:
            params["brightness"] = torch.where(on["color"], (u() - 0.5) * self.brightness, params["brightness"])
            params["saturation"] = torch.where(on["color"], u() * self.saturation, params["saturation"])
            params["contrast"] = torch.where(on["color"], u() * 2 * self.contrast + 1 - self.contrast, params["contrast"])
        if any(name in on for name in SPATIAL):
            params["grid"] = self._grid(on, u, count, image_size, device, dtype)
        if "cutout" in on:
            params["mask"] = torch.where(on["cutout"][:, None, None],
                                         self._cutout_mask(count, image_size, generator, device, dtype), params["mask"])
        return params

    def _groups(self) -> set[str]:
        return {"spatial" if name in SPATIAL else name for name in self.transforms}

    def _chosen(self, generator, count, device) -> dict[str, torch.Tensor]:
        """bool [count] per switched-on transform: whether each draw applies it."""
        if self.compose:
            return {name: torch.ones(count, dtype=torch.bool, device=device) for name in self.transforms}
        pick = torch.randint(len(self.transforms), (count,), generator=generator, device=device)
        return {name: pick == i for i, name in enumerate(self.transforms)}

    def _grid(self, on, u, count, image_size, device, dtype) -> torch.Tensor:
        """The sampling grid [count, H, W, 2] of the affine map x(F S R p − shift): rotation, then
        scale, then flip of the output coordinates p, and a whole-pixel translation."""
        eye = torch.eye(2, device=device, dtype=dtype).expand(count, 2, 2)
        never = torch.zeros(count, dtype=torch.bool, device=device)

        def applies(name: str) -> torch.Tensor:  # bool [count, 1, 1]
            return on.get(name, never)[:, None, None]

        angle = (u() * 2 - 1) * math.radians(self.rotate)
        cos, sin = angle.cos(), angle.sin()
        rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        scaling = torch.diag_embed(u(2) * (self.scale - 1 / self.scale) + 1 / self.scale)
        mirror = 1 - 2 * (u() < self.flip).to(dtype)
        flipping = torch.diag_embed(torch.stack([mirror, torch.ones_like(mirror)], -1))
        linear = (torch.where(applies("flip"), flipping, eye) @ torch.where(applies("scale"), scaling, eye)
                  @ torch.where(applies("rotate"), rotation, eye))
        # Whole pixels: in grid_sample's coordinates (align_corners=False) a pixel is 2/side wide,
        # so a shift of k pixels maps pixel centres onto pixel centres and the crop stays exact.
        height, width = image_size
        sides = torch.tensor([width, height], device=device, dtype=dtype)
        reach = torch.round(sides * self.crop)
        pixels = torch.floor(u(2) * (2 * reach + 1)) - reach
        shift = torch.where(applies("crop")[:, :, 0], pixels * 2 / sides, torch.zeros_like(pixels))
        theta = torch.cat([linear, -shift[:, :, None]], -1)
        return F.affine_grid(theta, [count, 1, height, width], align_corners=False)

    def _cutout_mask(self, count, image_size, generator, device, dtype) -> torch.Tensor:
        """[count, H, W]: zeros on a square of side `cutout`·side centred on a random pixel
        (clipped at the borders), ones elsewhere."""
        masks = []
        for axis, side in enumerate(image_size):
            size = max(1, round(side * self.cutout))
            centre = torch.randint(side, (count, 1), generator=generator, device=device)
            start = centre - size // 2
            index = torch.arange(side, device=device)
            masks.append((index >= start) & (index < start + size))
        inside = masks[0][:, :, None] & masks[1][:, None, :]
        return (~inside).to(dtype)


def identity(count: int, image_size: tuple[int, int], device, dtype: torch.dtype | None = None,
             groups: set[str] = frozenset({"color", "spatial", "cutout"})) -> Params:
    """`count` draws that leave images as they are: the base every draw starts from."""
    dtype = dtype or torch.get_default_dtype()
    params = {}
    if "color" in groups:
        params |= {"brightness": torch.zeros(count, device=device, dtype=dtype),
                   "saturation": torch.ones(count, device=device, dtype=dtype),
                   "contrast": torch.ones(count, device=device, dtype=dtype)}
    if "spatial" in groups:
        theta = torch.eye(2, 3, device=device, dtype=dtype).expand(count, 2, 3)
        params["grid"] = F.affine_grid(theta, [count, 1, *image_size], align_corners=False)
    if "cutout" in groups:
        params["mask"] = torch.ones(count, *image_size, device=device, dtype=dtype)
    return params


def augment(images: torch.Tensor, params: Params) -> torch.Tensor:
    """Images [N, C, H, W] under ONE draw (`draw`'s output sliced at one index), the same
    transform for every image; differentiable in the images, to any order."""
    if "brightness" in params:
        images = images + params["brightness"]
        mean = images.mean(1, keepdim=True)
        images = (images - mean) * params["saturation"] + mean
        mean = images.mean((1, 2, 3), keepdim=True)
        images = (images - mean) * params["contrast"] + mean
    if "grid" in params:
        grid = params["grid"].expand(images.shape[0], *params["grid"].shape)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if "mask" in params:
        images = images * params["mask"]
    return images
