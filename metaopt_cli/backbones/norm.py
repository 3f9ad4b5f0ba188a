"""The normalisation layer choice shared by the convolutional backbones."""

from torch import nn

from metaopt_cli.errors import UserError

NORM_KINDS = ("batch", "instance", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """Return a 2-d normalisation layer over `channels` feature maps."""
    if kind == "batch":
        # Always batch statistics: running-stat buffers would be mutated in place inside
        # functional_call / vmap traces, and MAML-style inner loops normalise per batch anyway.
        return nn.BatchNorm2d(channels, track_running_stats=False)
    if kind == "instance":
        # GroupNorm with one channel per group is instance norm with a per-channel affine.
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise UserError(f"unknown norm {kind!r}: choose one of {', '.join(NORM_KINDS)}")
