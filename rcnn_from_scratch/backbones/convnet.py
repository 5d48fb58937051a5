"""The small backbone of the lecture's Fast, Faster and Mask R-CNN: a VGG-style CNN for 128 x 128
images, the first slot of the pipeline (``backbones/``; ``resnet.py`` and ``fpn.py`` beside it are the
real-scale variant).

Each stage is ``conv 3x3 (padding 1) -> ReLU -> max-pool 2x2``, halving the resolution (computed as
max-pool, then ReLU: the same function and gradients, on a quarter of the elements); three stages
give an overall stride of 8, so a 128 x 128 image becomes a 16 x 16 feature map (a shape of radius 8
to 24 pixels spans 2 to 6 cells). R-CNN uses the same family as its classifier's trunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..nn.activations import ReLU
from ..nn.conv import Conv2d
from ..nn.init import make_rng
from ..nn.module import Sequential
from ..nn.pooling import MaxPool2d

__all__ = ["Backbone", "make_backbone"]


class Backbone(Sequential):
    """A ``Sequential`` that also states what the heads need to know.

    Attributes:
        out_channels: channels ``C`` of the feature map.
        stride: image pixels per feature-map cell (``2 ** stages``); ``spatial_scale = 1 / stride``.
    """

    out_channels: int
    stride: int


def make_backbone(
    channels: Sequence[int] = (16, 32, 64), in_channels: int = 3, seed=0, input_grad: bool = False
) -> Backbone:
    """``len(channels)`` stages of conv 3x3 (padding 1) + ReLU + max-pool 2x2.

    Args:
        channels: output channels of each stage; ``(16, 32, 64)`` gives stride 8.
        in_channels: 3 for RGB images.
        seed: int seed or ``np.random.Generator`` of the He initialisation (same seed, same weights).
        input_grad: whether ``backward`` computes the gradient of the image; off by default (the
            image is not learned, and skipping it saves the largest col2im), so ``backward``
            returns ``None``.

    Returns:
        A :class:`Backbone`: ``(N, in_channels, H, W)`` float32 -> ``(N, channels[-1], H // s,
        W // s)`` with ``s = 2 ** len(channels)``. Parameter names ``"0.weight"``, ``"0.bias"``,
        ``"3.weight"``... (the index of each conv in the sequence).
    """
    if len(channels) == 0 or any(int(c) < 1 for c in channels):
        raise ValueError(
            f"channels must be a non-empty sequence of positive ints; got {channels!r}"
        )
    rng = make_rng(seed)
    layers = []
    c_in = in_channels
    for c_out in channels:
        grad = input_grad or bool(layers)
        # max-pool before ReLU: the same function (ReLU is monotone, so it commutes with a maximum,
        # and the gradients agree too), with ReLU on a quarter of the elements
        layers += [Conv2d(c_in, int(c_out), 3, padding=1, rng=rng, input_grad=grad), MaxPool2d(2)]
        layers.append(ReLU())
        c_in = int(c_out)
    net = Backbone(*layers)
    net.out_channels = int(channels[-1])
    net.stride = 2 ** len(channels)
    return net
