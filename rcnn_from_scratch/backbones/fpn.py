"""The feature pyramid network (Lin et al., 2017), as torchvision's ``ops.FeaturePyramidNetwork``
with ``LastLevelMaxPool``: forward and backward.

A backbone's maps C2..C5 are fine but semantically weak (C2) or strong but coarse (C5). The FPN
gives every level both, with one channel count ``D`` (256 in torchvision)::

    inner_i  = lateral 1x1 conv of C_i (with bias)                     (N, D, H_i, W_i)
    last     = inner_3
    last     = inner_i + nearest_upsample(last, size of inner_i)       for i = 2, 1, 0 (top-down)
    P_i      = 3x3 conv (pad 1, with bias) of each level's ``last``    (N, D, H_i, W_i)
    'pool'   = max_pool2d(P_3, kernel 1, stride 2) = P_3[..., ::2, ::2]

There is no ReLU anywhere. The levels are named ``'0', '1', '2', '3'`` (P2..P5 for a ResNet) and
``'pool'`` (P6, used by the RPN only). The upsampling copies each pixel to the nearest position of
the larger map, PyTorch's ``F.interpolate(mode="nearest")`` (``nn/upsample.py``): exactly 2x for
padded images, any ratio otherwise.

The backward runs the same loop in reverse: each level's gradient enters through its 3x3
convolution, flows into its lateral 1x1 convolution and, summed over the copied pixels, up into the
coarser level, where it adds to that level's own gradient.
"""

from __future__ import annotations

import numpy as np

from ..nn.conv import Conv2d
from ..nn.init import make_rng
from ..nn.module import Module, ModuleList, Sequential
from ..nn.pooling import max_pool2d_backward, max_pool2d_forward
from ..nn.upsample import interpolate_nearest_backward, interpolate_nearest_forward

__all__ = ["FeaturePyramidNetwork", "BackboneWithFPN"]


def _check_channels(in_channels_list, out_channels) -> tuple[list[int], int]:
    ok = len(in_channels_list) > 0 and all(int(c) == c and c >= 1 for c in in_channels_list)
    if not ok:
        raise ValueError(
            f"in_channels_list must be a non-empty list of ints >= 1; got {in_channels_list!r}"
        )
    if int(out_channels) != out_channels or out_channels < 1:
        raise ValueError(f"out_channels must be an int >= 1; got {out_channels!r}")
    return [int(c) for c in in_channels_list], int(out_channels)


class FeaturePyramidNetwork(Module):
    """``FeaturePyramidNetwork(in_channels_list, out_channels, extra_pool=True, rng=None)``.

    Parameters named as torchvision's: ``inner_blocks.{i}.0.weight`` ``(D, C_i, 1, 1)`` and
    ``.bias`` ``(D,)``, then ``layer_blocks.{i}.0.weight`` ``(D, D, 3, 3)`` and ``.bias``; He-normal
    weights, zero biases, float32 (``rng``: generator or seed). ``extra_pool`` appends the
    ``'pool'`` level (torchvision's ``LastLevelMaxPool``).

    ``forward(features)`` takes a list of ``len(in_channels_list)`` maps, highest resolution first,
    ``(N, C_i, H_i, W_i)`` float32 or float64 (each ``H_i >= H_{i+1}``, usually about twice), and
    returns ``{"0": P_0, ..., "pool": P_pool}``: ``P_i`` ``(N, D, H_i, W_i)``, ``'pool'``
    ``(N, D, ceil(H_last / 2), ceil(W_last / 2))``. ``backward(grads)`` takes a dict of gradients by
    the same names (a missing name counts as a zero gradient) and returns the list of the inputs'
    gradients; parameter gradients accumulate into ``Parameter.grad``.
    """

    def __init__(self, in_channels_list, out_channels, extra_pool=True, rng=None):
        in_channels_list, out_channels = _check_channels(in_channels_list, out_channels)
        rng = make_rng(rng)
        self.inner_blocks = ModuleList(
            [Sequential(Conv2d(c, out_channels, 1, rng=rng)) for c in in_channels_list]
        )
        self.layer_blocks = ModuleList(
            [
                Sequential(Conv2d(out_channels, out_channels, 3, padding=1, rng=rng))
                for _ in in_channels_list
            ]
        )
        self.in_channels_list, self.out_channels = in_channels_list, out_channels
        self.extra_pool = bool(extra_pool)

    @property
    def names(self) -> list[str]:
        """The output names in order: ``'0' .. str(L - 1)``, then ``'pool'`` if ``extra_pool``."""
        return [str(i) for i in range(len(self.in_channels_list))] + ["pool"] * self.extra_pool

    def _check_features(self, features) -> list[np.ndarray]:
        L = len(self.in_channels_list)
        if isinstance(features, np.ndarray) or len(features) != L:
            raise ValueError(f"features must be a list of {L} (N, C, H, W) maps, finest first")
        features = [np.asarray(f) for f in features]
        for i, (f, c) in enumerate(zip(features, self.in_channels_list, strict=True)):
            if f.ndim != 4 or f.shape[1] != c or len(f) != len(features[0]):
                raise ValueError(
                    f"features[{i}] must have shape ({len(features[0])}, {c}, H, W); got {f.shape}"
                )
        return features

    def _forward(self, features):
        x = self._check_features(features)
        inner, layer = self.inner_blocks, self.layer_blocks
        last_inner = inner[-1](x[-1])  # (N, D, H_L, W_L)
        results = [layer[-1](last_inner)]
        upsample = [None] * len(x)  # upsample[i]: the cache of the resize into level i
        for i in range(len(x) - 2, -1, -1):  # the top-down path, coarse to fine
            lateral = inner[i](x[i])  # (N, D, H_i, W_i), a fresh array: added to in place
            top_down, upsample[i] = interpolate_nearest_forward(last_inner, lateral.shape[-2:])
            lateral += top_down
            last_inner = lateral
            results.insert(0, layer[i](last_inner))
        out = {str(i): p for i, p in enumerate(results)}
        pool = None
        if self.extra_pool:
            out["pool"], pool = max_pool2d_forward(results[-1], 1, 2, 0)
        shapes = {name: p.shape for name, p in out.items()}
        return out, (upsample, pool, shapes)

    def _backward(self, grads, cache):
        upsample, pool, shapes = cache
        if not isinstance(grads, dict):
            raise ValueError(
                f"grads must be a dict by level name {sorted(shapes)}; got {type(grads)}"
            )
        unknown = sorted(set(grads) - set(shapes))
        if unknown:
            raise ValueError(
                f"grads has names {unknown} that the pyramid does not output {sorted(shapes)}"
            )
        for name, g in grads.items():
            if np.shape(g) != shapes[name]:
                raise ValueError(
                    f"grads[{name!r}] must have shape {shapes[name]}; got {np.shape(g)}"
                )
        L = len(self.in_channels_list)

        def grad_of(name):  # a missing name is a zero gradient
            g = grads.get(name)
            return np.zeros(shapes[name], _dtype(grads, self)) if g is None else np.asarray(g)

        d_results = [grad_of(str(i)) for i in range(L)]
        if pool is not None and "pool" in grads:
            d_results[-1] = d_results[-1] + max_pool2d_backward(grads["pool"], pool)
        dx = [None] * L
        carry = (
            None  # gradient of the finer level's top-down input, i.e. of this level's last_inner
        )
        for i in range(L):  # the reverse of the top-down path: fine to coarse
            d_last_inner = self.layer_blocks[i].backward(d_results[i])  # (N, D, H_i, W_i)
            if carry is not None:
                d_last_inner += carry
            if i < L - 1:  # last_inner_i = lateral_i + upsample(last_inner_{i+1})
                carry = interpolate_nearest_backward(d_last_inner, upsample[i])
            dx[i] = self.inner_blocks[i].backward(d_last_inner)
        return dx


def _dtype(grads: dict, module: Module):
    """The dtype for a zero gradient: that of the given gradients, else of the parameters."""
    given = [np.asarray(g).dtype for g in grads.values()]
    return np.result_type(*given) if given else module.inner_blocks[0][0].weight.data.dtype


class BackboneWithFPN(Module):
    """``BackboneWithFPN(body, in_channels_list, out_channels=256, rng=None)``: ``fpn(body(x))``.

    Children ``body`` (any module mapping ``(N, 3, H, W)`` to a list of maps, finest first, e.g.
    :class:`~rcnn_from_scratch.backbones.resnet.ResNetBody`) and ``fpn``
    (:class:`FeaturePyramidNetwork` with ``extra_pool``), so parameter names are torchvision's
    without ``backbone.``: ``body.conv1.weight``, ``fpn.inner_blocks.0.0.weight``, ...

    Attributes:
        out_channels: ``D``, the channels of every pyramid level.
    """

    def __init__(self, body: Module, in_channels_list, out_channels: int = 256, rng=None):
        if not isinstance(body, Module):
            raise ValueError(f"body must be a Module; got {type(body).__name__}")
        self.body = body
        self.fpn = FeaturePyramidNetwork(in_channels_list, out_channels, extra_pool=True, rng=rng)
        self.out_channels = self.fpn.out_channels

    def forward_with_body(self, x) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        """``(C, P)``: the body's maps (a list, finest first) and the pyramid (a dict by name).

        Args:
            x: ``(N, 3, H, W)`` float32 images, as the body expects them.
        """
        features = self.body(x)
        return features, self.fpn(features)

    def forward(self, x) -> dict[str, np.ndarray]:
        """The pyramid ``{"0": ..., "pool": ...}`` of ``x`` ``(N, 3, H, W)`` (see the FPN)."""
        return self.forward_with_body(x)[1]

    __call__ = forward

    def backward(self, grads):
        """The gradient of the image through the FPN and the body (the body must be trainable:
        :class:`~rcnn_from_scratch.backbones.resnet.ResNetBody` raises ``NotImplementedError``)."""
        return self.body.backward(self.fpn.backward(grads))
