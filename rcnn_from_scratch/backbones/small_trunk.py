"""A small trainable trunk with four stages at strides 4, 8, 16, 32: the bottom-up path of the
lecture's feature pyramid, what ResNet's C2..C5 are at full scale, small enough to train on a CPU.

    stage 0: conv 3x3 -> max-pool 2x2 -> ReLU -> conv 3x3 -> max-pool 2x2 -> ReLU    C2, stride 4
    stage i: conv 3x3 -> max-pool 2x2 -> ReLU                                         C_{i+2}, stride 4 * 2^i

(max-pool before ReLU, as ``convnet.py``: the same function on a quarter of the elements.) The
forward returns every stage's map, finest first; the backward takes one gradient per map (the FPN
reads all four, the single-level detector only the last) and sums each into the path from above.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..nn.activations import ReLU
from ..nn.conv import Conv2d
from ..nn.init import make_rng
from ..nn.module import Module, ModuleList, Sequential
from ..nn.pooling import MaxPool2d

__all__ = ["SmallTrunk"]


class SmallTrunk(Module):
    """``SmallTrunk(channels=(16, 32, 64, 128), in_channels=3, rng=None)``.

    ``forward(x)``: ``x`` ``(N, in_channels, H, W)`` float32 (or float64 after ``.to``) with ``H``
    and ``W`` multiples of 32 -> a list of four maps ``(N, channels[i], H / s_i, W / s_i)``,
    ``s_i = 4, 8, 16, 32``. ``backward(grads)``: a list of four gradients of those shapes (``None``
    for a map nothing read) -> ``None`` (the image is not learned). Parameters
    ``stages.{i}.{j}.weight`` / ``.bias``, He-initialised from ``rng`` (generator or seed).

    Attributes:
        out_channels: the four stages' channels; ``strides``: ``(4, 8, 16, 32)``.
    """

    strides = (4, 8, 16, 32)

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 128), in_channels: int = 3, rng=None):
        if len(channels) != 4 or any(int(c) != c or c < 1 for c in channels):
            raise ValueError(f"channels must be four positive ints; got {channels!r}")
        rng = make_rng(rng)
        c = [int(v) for v in channels]

        def stage(c_in, c_out, input_grad=True):
            conv = Conv2d(c_in, c_out, 3, padding=1, rng=rng, input_grad=input_grad)
            return [conv, MaxPool2d(2), ReLU()]

        first = stage(in_channels, c[0], input_grad=False) + stage(c[0], c[0])
        self.stages = ModuleList(
            [Sequential(*first)] + [Sequential(*stage(c[i - 1], c[i])) for i in range(1, 4)]
        )
        self.out_channels = tuple(c)

    def _forward(self, x):
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(
                f"x must have shape (N, C, H, W) with H and W multiples of 32; got {x.shape}"
            )
        maps = []
        for stage in self.stages.modules:
            x = stage(x)
            maps.append(x)
        return maps, [m.shape for m in maps]

    def _backward(self, grads, shapes):
        if len(grads) != 4:
            raise ValueError(f"grads must hold one gradient (or None) per stage; got {len(grads)}")
        d = None  # the gradient arriving from the stage above
        for i in range(3, -1, -1):
            g = grads[i]
            if g is not None and np.shape(g) != shapes[i]:
                raise ValueError(f"grads[{i}] must have shape {shapes[i]}; got {np.shape(g)}")
            if g is not None:
                d = np.asarray(g) if d is None else d + g
            if d is None:
                d = np.zeros(shapes[i], self.stages[i][0].weight.data.dtype)
            d = self.stages[i].backward(d)
        return None
