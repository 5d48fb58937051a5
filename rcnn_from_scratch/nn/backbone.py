"""The backbone shared by Fast, Faster and Mask R-CNN: a small VGG-style CNN for 128 x 128 images.

Each stage is ``conv 3x3 -> ReLU -> max-pool 2x2``, halving the resolution; three stages give an
overall stride of 8, so a 128 x 128 image becomes a 16 x 16 feature map (a shape of radius 8 to 24
pixels spans 2 to 6 cells). R-CNN uses the same family as its classifier's trunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from .conv import Conv2d
from .init import make_rng
from .layers import MaxPool2d, ReLU
from .module import Sequential

__all__ = ["Backbone", "make_backbone"]


class Backbone(Sequential):
    """A ``Sequential`` that also knows its ``out_channels`` and overall ``stride``."""

    out_channels: int
    stride: int


def make_backbone(
    channels: Sequence[int] = (16, 32, 64), in_channels: int = 3, rng=None
) -> Backbone:
    """``len(channels)`` stages of conv 3x3 (padding 1) + ReLU + max-pool 2x2.

    Args:
        channels: output channels of each stage, e.g. ``(16, 32, 64)`` -> stride 8.
        rng: generator or seed of the He initialisation.

    Returns:
        A :class:`Backbone`: ``(N, 3, H, W)`` -> ``(N, channels[-1], H / 2^S, W / 2^S)``; its
        ``backward`` returns ``None`` (no gradient for the image).
    """
    rng = make_rng(rng)
    layers = []
    c_in = in_channels
    for c_out in channels:
        # the first conv needs no input gradient: the image is not learned
        conv = Conv2d(c_in, c_out, 3, padding=1, rng=rng, input_grad=bool(layers))
        layers += [conv, ReLU(), MaxPool2d(2)]
        c_in = c_out
    net = Backbone(*layers)
    net.out_channels = int(channels[-1])
    net.stride = 2 ** len(channels)
    return net
