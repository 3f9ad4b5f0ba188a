"""Differentiable Siamese augmentation: identity draws, one draw shared by every image and by
the two batches it is applied to, exact flips and crops, gradients to the images (second order
too), and vmap over draws."""
import pytest
import torch
from torch.func import vmap

from metaopt_cli.tasks.distill.augment import SiameseAugment, augment, identity

from conftest import TINY, assert_user_error, run_in_process

SIZE = (8, 8)


def one(params, i):
    return {name: value[i] for name, value in params.items()}


def impulse(row: int, col: int, count: int = 1) -> torch.Tensor:
    images = torch.zeros(count, 1, *SIZE, dtype=torch.float64)
    images[:, :, row, col] = 1.0
    return images


def test_identity_gives_the_input_back():
    images = torch.randn(3, 2, *SIZE, dtype=torch.float64)
    params = identity(1, SIZE, "cpu", torch.float64)
    assert set(params) == {"brightness", "saturation", "contrast", "grid", "mask"}
    torch.testing.assert_close(augment(images, one(params, 0)), images, rtol=0, atol=1e-12)


def test_a_draw_moves_an_impulse_by_whole_pixels_and_both_batches_alike():
    """A crop is a whole-pixel translation: the impulse stays one pixel of value 1, moved by the
    same offset in the real and in the synthetic batch (of different sizes)."""
    dsa = SiameseAugment(transforms=("crop",))
    params = dsa.draw(torch.Generator().manual_seed(0), 20, "cpu", SIZE, torch.float64)
    reach = round(SIZE[0] * dsa.crop)
    moved = set()
    for i in range(20):
        real = augment(impulse(3, 4, count=5), one(params, i))
        synthetic = augment(impulse(4, 2, count=2), one(params, i))
        (r_row, r_col), (s_row, s_col) = [divmod(int(out[0, 0].argmax()), SIZE[1]) for out in (real, synthetic)]
        shift = (r_row - 3, r_col - 4)
        assert (s_row - 4, s_col - 2) == shift
        assert max(abs(shift[0]), abs(shift[1])) <= reach
        for out in (real, synthetic):
            assert torch.allclose(out, out[:1].expand_as(out), atol=1e-12)  # every image of a batch alike
            assert out.sum().item() == pytest.approx(len(out)) and out.max().item() == pytest.approx(1.0)
        moved.add(shift)
    assert len(moved) > 3  # the draws differ


def test_flip_flips():
    images = torch.randn(2, 3, *SIZE, dtype=torch.float64)
    always = SiameseAugment(transforms=("flip",), flip=1.0).draw(torch.Generator().manual_seed(0), 1, "cpu", SIZE,
                                                                   torch.float64)
    never = SiameseAugment(transforms=("flip",), flip=0.0).draw(torch.Generator().manual_seed(0), 1, "cpu", SIZE,
                                                                  torch.float64)
    torch.testing.assert_close(augment(images, one(always, 0)), images.flip(-1), rtol=0, atol=1e-12)
    torch.testing.assert_close(augment(images, one(never, 0)), images, rtol=0, atol=1e-12)


def test_single_mode_applies_one_transform_per_draw():
    """The paper's default: each draw is one of the switched-on transforms, the others left at
    identity; compose applies them all."""
    count = 200
    base = identity(count, SIZE, "cpu", torch.float64)
    single = SiameseAugment().draw(torch.Generator().manual_seed(1), count, "cpu", SIZE, torch.float64)
    changed = torch.stack([
        (single["brightness"] != base["brightness"]),
        (single["grid"] != base["grid"]).flatten(1).any(1),
        (single["mask"] != base["mask"]).flatten(1).any(1),
    ])
    assert changed.sum(0).max() == 1  # never two groups at once
    assert changed.any(1).all()  # each group sometimes
    every = SiameseAugment(compose=True).draw(torch.Generator().manual_seed(1), count, "cpu", SIZE, torch.float64)
    assert (every["brightness"] != base["brightness"]).all() and (every["mask"] != base["mask"]).flatten(1).any(1).all()


def test_ranges_are_the_papers():
    count = 500
    colour = SiameseAugment(transforms=("color",)).draw(torch.Generator().manual_seed(2), count, "cpu", SIZE)
    assert colour["brightness"].abs().max() <= 0.5 and colour["brightness"].abs().max() > 0.45
    assert 0 <= colour["saturation"].min() < 0.05 and 1.95 < colour["saturation"].max() <= 2.0
    assert 0.5 <= colour["contrast"].min() < 0.55 and 1.45 < colour["contrast"].max() <= 1.5
    rotation = SiameseAugment(transforms=("rotate",)).draw(torch.Generator().manual_seed(2), count, "cpu", SIZE,
                                                           torch.float64)
    # The grid's corner pixel centre moves on a circle by the angle: at most 15 degrees.
    corner = rotation["grid"][:, 0, 0]
    base = identity(1, SIZE, "cpu", torch.float64)["grid"][0, 0, 0]
    angle = torch.rad2deg(torch.atan2(corner[:, 1], corner[:, 0]) - torch.atan2(base[1], base[0]))
    assert angle.abs().max() <= 15 + 1e-9 and angle.abs().max() > 14


@pytest.mark.parametrize("compose", [True, False])
def test_gradients_reach_the_images_to_second_order(compose):
    dsa = SiameseAugment(compose=compose)
    params = one(dsa.draw(torch.Generator().manual_seed(3), 4, "cpu", (5, 5), torch.float64), 3 if compose else 0)
    images = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3 * 25, 4, dtype=torch.float64)

    def loss(x):  # nonlinear in the images, so that the second derivative is not zero
        return (augment(x, params).flatten(1) @ weights).tanh().sum().reshape(1)

    assert torch.autograd.gradcheck(loss, (images,))
    assert torch.autograd.gradgradcheck(loss, (images,))


def test_works_under_vmap_over_draws_and_over_batches():
    dsa = SiameseAugment(compose=True)
    params = dsa.draw(torch.Generator().manual_seed(4), 3, "cpu", SIZE, torch.float64)
    images = torch.randn(3, 2, 1, *SIZE, dtype=torch.float64)
    expected = torch.stack([augment(images[i], one(params, i)) for i in range(3)])
    torch.testing.assert_close(vmap(augment)(images, params), expected)
    shared = torch.stack([augment(images[0], one(params, i)) for i in range(3)])
    torch.testing.assert_close(vmap(augment, in_dims=(None, 0))(images[0], params), shared)


def test_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="transforms"):
        SiameseAugment(transforms=("crop", "warp"))


def test_dsa_on_the_unrolled_method_is_one_error_line(tmp_path):
    result = run_in_process(["train", *TINY, "task.dsa=true", "hydra.run.dir=run"], tmp_path)
    assert_user_error(result, "task.dsa=true", "task.dsa=false")
