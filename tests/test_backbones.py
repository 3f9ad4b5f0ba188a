"""Backbones: shapes, and the functional uses the meta-learners rely on (vmap, nested grad)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.func import functional_call, grad, stack_module_state, vmap

from metaopt_cli.backbones.conv4 import Conv4
from metaopt_cli.backbones.convnet import ConvNet
from metaopt_cli.backbones.mlp import MLP
from metaopt_cli.backbones.norm import make_norm
from metaopt_cli.backbones.resnet12 import ResNet12
from metaopt_cli.backbones.wrn import WideResNet
from metaopt_cli.errors import UserError

IN_SHAPE = (3, 16, 16)
WAYS = 5
TINY = {
    "mlp": (MLP, {"hidden": [16]}),
    "conv4": (Conv4, {"width": 8}),
    "convnet": (ConvNet, {"width": 8}),
    "resnet12": (ResNet12, {"widths": (4, 4, 8, 8)}),
    "wrn": (WideResNet, {"depth": 10, "widen": 1}),
}
CONV = ["conv4", "convnet", "resnet12", "wrn"]


def build(name, num_outputs=WAYS, in_shape=IN_SHAPE, **overrides):
    cls, kwargs = TINY[name]
    return cls(in_shape, num_outputs, **{**kwargs, **overrides})


def batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *IN_SHAPE, generator=g), torch.randint(0, WAYS, (n,), generator=g)


@pytest.mark.parametrize("name", TINY)
def test_output_and_embedding_shapes(name):
    torch.manual_seed(0)
    x, _ = batch()
    assert build(name)(x).shape == (6, WAYS)
    embed = build(name, num_outputs=None)
    assert embed(x).shape == (6, embed.feature_dim)


@pytest.mark.parametrize("name", TINY)
def test_functional_call_matches_module(name):
    torch.manual_seed(0)
    model = build(name)
    x, _ = batch()
    params = dict(model.named_parameters())
    torch.testing.assert_close(functional_call(model, params, (x,)), model(x))


@pytest.mark.parametrize("name", TINY)
def test_vmap_over_stacked_params_matches_loop(name):
    torch.manual_seed(0)
    copies = [build(name) for _ in range(3)]
    params, buffers = stack_module_state(copies)
    assert not buffers  # nothing that forward could update in place
    base = copy.deepcopy(copies[0]).to("meta")
    xs = torch.stack([batch(seed=s)[0] for s in range(3)])  # one task per copy

    def run(p, x):
        return functional_call(base, p, (x,))

    shared = vmap(run, in_dims=(0, None))(params, xs[0])
    per_task = vmap(run)(params, xs)
    for i, m in enumerate(copies):
        torch.testing.assert_close(shared[i], m(xs[0]), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(per_task[i], m(xs[i]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("inner", ["autograd", "func"])
@pytest.mark.parametrize("name", TINY)
def test_second_order_gradient(name, inner):
    torch.manual_seed(0)
    model = build(name)
    params = {k: v.detach().requires_grad_() for k, v in model.named_parameters()}
    (xs, ys), (xq, yq) = batch(seed=1), batch(seed=2)

    def loss(p, x, y):
        return F.cross_entropy(functional_call(model, p, (x,)), y)

    if inner == "func":
        g = grad(loss)(params, xs, ys)
    else:
        grads = torch.autograd.grad(loss(params, xs, ys), list(params.values()), create_graph=True)
        g = dict(zip(params, grads))
    adapted = {k: params[k] - 0.1 * g[k] for k in params}
    meta = torch.autograd.grad(loss(adapted, xq, yq), list(params.values()))
    flat = torch.cat([t.flatten() for t in meta])
    assert torch.isfinite(flat).all()
    assert flat.abs().sum() > 0


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("name", CONV)
def test_each_norm_kind(name, norm):
    torch.manual_seed(0)
    model = build(name, norm=norm)
    x, _ = batch()
    out = vmap(lambda p: functional_call(model, p, (x,)))(
        {k: v.expand(2, *v.shape) for k, v in model.named_parameters()}
    )
    assert out.shape == (2, 6, WAYS) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["conv4", "resnet12"])
def test_too_small_images_raise(name):
    with pytest.raises(UserError, match=r"16×16.*8×8"):
        build(name, in_shape=(3, 8, 8))


def test_convnet_depth_sets_the_smallest_image_and_the_embedding():
    """Each block halves the maps (rounding down, 28 → 14 → 7 → 3 as in the papers' MNIST runs)."""
    assert build("convnet", num_outputs=None, in_shape=(1, 28, 28), width=4).feature_dim == 4 * 3 * 3
    assert build("convnet", num_outputs=None, in_shape=(1, 8, 8), depth=3).feature_dim == 8
    assert build("convnet", in_shape=(1, 8, 8), depth=2, pooling="max")(torch.randn(2, 1, 8, 8)).shape == (2, WAYS)
    with pytest.raises(UserError, match=r"16×16.*8×8"):
        build("convnet", in_shape=(1, 8, 8), depth=4)
    with pytest.raises(UserError, match="backbone.depth"):
        build("convnet", depth=0)


def test_wrn_bad_depth_and_tiny_images_raise():
    with pytest.raises(UserError, match="6n\\+4"):
        build("wrn", depth=12)
    with pytest.raises(UserError, match="4×4"):
        build("wrn", in_shape=(1, 2, 2))


def test_unknown_norm_raises():
    with pytest.raises(UserError, match="batch, instance, none"):
        make_norm("nope", 4)


def test_hydra_instantiate_with_listconfig():
    cfg = OmegaConf.create(
        {"_target_": "metaopt_cli.backbones.resnet12.ResNet12", "widths": [4, 4, 8, 8], "norm": "instance"}
    )
    model = instantiate(cfg, in_shape=IN_SHAPE, num_outputs=WAYS)
    assert model.feature_dim == 8 and model(batch()[0]).shape == (6, WAYS)


NORMED = [("mlp", None)] + [(name, norm) for name in CONV for norm in ("batch", "instance")]


@pytest.mark.parametrize(("name", "norm"), NORMED)
def test_second_order_gradients_are_exact_under_vmap(name, norm):
    """A meta-gradient through an inner gradient step, taken with the tasks under vmap, equals
    the one taken task by task (torch's fused batch-norm backward under vmap loses
    second-order terms; make_norm("batch") must not, and instance norm's group-norm kernel
    must not either)."""
    torch.manual_seed(0)
    small = {"conv4": {"width": 4}, "convnet": {"width": 4}}.get(name, {})
    net = build(name, in_shape=(1, 16, 16), **small, **({"norm": norm} if norm else {})).double()
    params = {name: p.detach().requires_grad_() for name, p in net.named_parameters()}
    x = torch.randn(3, 6, 1, 16, 16, dtype=torch.float64)
    y = torch.randint(0, WAYS, (3, 6))

    def inner_loss(p, xb, yb):
        return F.cross_entropy(functional_call(net, p, (xb,)), yb)

    def meta_loss(p, xb, yb):
        adapted = {n: v - 0.1 * g for (n, v), g in zip(p.items(), grad(inner_loss)(p, xb, yb).values())}
        return inner_loss(adapted, xb, yb)

    batched = torch.autograd.grad(vmap(meta_loss, in_dims=(None, 0, 0))(params, x, y).sum(), list(params.values()))
    looped = torch.autograd.grad(sum(meta_loss(params, x[b], y[b]) for b in range(3)), list(params.values()))
    for a, b in zip(batched, looped):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
