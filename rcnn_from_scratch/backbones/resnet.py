"""ResNet-50, torchvision's ``resnet50`` up to ``layer4``: the body of the real Mask R-CNN, inference only.

The network (He et al., 2016, in torchvision's "v1.5" form)::

    image (N, 3, H, W)
      conv1 7x7/2 (pad 3) -> bn1 -> ReLU -> max-pool 3x3/2 (pad 1)         stride 4,  64 channels
      layer1: 3 bottlenecks, planes  64                                   -> C2: stride 4,  256
      layer2: 4 bottlenecks, planes 128, the first with stride 2          -> C3: stride 8,  512
      layer3: 6 bottlenecks, planes 256, the first with stride 2          -> C4: stride 16, 1024
      layer4: 3 bottlenecks, planes 512, the first with stride 2          -> C5: stride 32, 2048

A bottleneck squeezes the channels with a 1x1 convolution, works at that width with a 3x3, expands
by 4 with another 1x1 and adds its input back (the residual). "v1.5" puts a block's stride on the
3x3 (``conv2``), not on the first 1x1 as the paper does. The first block of every layer changes the
channel count, so its shortcut is a ``downsample``: a strided 1x1 convolution and a batch norm.

Every convolution here is followed by a *frozen* batch norm (``nn/batch_norm.py``), a fixed
per-channel affine map, so each conv + BN pair is folded into one convolution with a bias
(:func:`~rcnn_from_scratch.nn.batch_norm.fold_batch_norm`) and the forward never runs a batch norm.
The parameters keep torchvision's names and values (``layer1.0.bn1.running_var``...), so a
torchvision state dict loads by name; the folded copies are derived from them by :meth:`fold`.

Inference only: the parameters are frozen (``requires_grad=False``), the forward keeps no caches
(each intermediate map is freed as soon as the next one exists; ReLU and the residual add work in
place; ``conv2d_forward`` bounds its own scratch memory, a block of rows at a time) and
``backward`` raises. The lecture's trainable networks are ``convnet.py`` and ``fpn.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..nn.batch_norm import FrozenBatchNorm2d, fold_batch_norm
from ..nn.conv import Conv2d, conv2d_forward
from ..nn.init import make_rng
from ..nn.module import Module, Parameter, Sequential
from ..nn.pooling import max_pool2d_forward

__all__ = ["Bottleneck", "ResNetBody", "EXPANSION"]

EXPANSION = 4
"""A bottleneck's output channels are ``EXPANSION * planes``."""


def _frozen_conv(c_in: int, c_out: int, k: int, stride: int, padding: int, rng) -> Conv2d:
    """A bias-free ``Conv2d`` (He-normal) whose weight is frozen, as every ResNet convolution."""
    conv = Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False, rng=rng)
    conv.weight = Parameter(conv.weight.data, requires_grad=False)
    return conv


def _fold(conv: Conv2d, bn: FrozenBatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, bias)`` of the one convolution equal to ``bn(conv(x))``."""
    return fold_batch_norm(
        conv.weight.data, None, bn.weight.data, bn.bias.data,
        bn.running_mean.data, bn.running_var.data, bn.eps,
    )  # fmt: skip


class _Folded(Module):
    """What the two frozen networks share: ``fold`` after loading or casting; no backward."""

    def fold(self) -> None:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy torchvision-named arrays into the parameters (every key must fit), then :meth:`fold`."""
        super().load_state_dict(state)
        self.fold()

    def to(self, dtype) -> Module:
        """Cast every parameter to ``dtype`` (float64 for exact comparisons), then refold."""
        super().to(dtype)
        self.fold()
        return self

    def batch_norms(self) -> list[FrozenBatchNorm2d]:
        """Every frozen batch norm inside, in definition order."""
        found = []

        def walk(module: Module) -> None:
            for _, child in module.children():
                if isinstance(child, FrozenBatchNorm2d):
                    found.append(child)
                else:
                    walk(child)

        walk(self)
        return found

    def set_eps(self, eps: float) -> None:
        """Set every batch norm's ``eps`` and refold. torchvision's COCO v1 detection weights need
        ``0.0`` (its builders call ``overwrite_eps(model, 0.0)``); ImageNet weights use 1e-5."""
        eps = float(eps)
        if not eps >= 0:
            raise ValueError(f"eps must be a float >= 0; got {eps!r}")
        for bn in self.batch_norms():
            bn.eps = eps
        self.fold()

    def backward(self, dout):
        raise NotImplementedError(
            f"{type(self).__name__} is inference only: frozen batch norm is folded into its "
            "convolutions and its forward keeps no caches (train convnet.py or fpn.py instead)"
        )


class Bottleneck(_Folded):
    """``Bottleneck(in_channels, planes, stride=1, downsample=False, eps=1e-5, rng=None)``, v1.5.

    ``x -> conv1 1x1 -> bn1 -> ReLU -> conv2 3x3/stride (pad 1) -> bn2 -> ReLU -> conv3 1x1 -> bn3``,
    plus the shortcut (``x``, or ``downsample(x)``: a 1x1/stride conv and a batch norm), then ReLU.
    Output channels ``4 * planes``. Children named as torchvision's: ``conv1, bn1, conv2, bn2,
    conv3, bn3`` and ``downsample`` (``downsample.0`` conv, ``downsample.1`` batch norm); no
    convolution has a bias; every parameter is frozen.

    After changing parameters in place (``p.data[...] = ...``) call :meth:`fold` again;
    ``load_state_dict``, ``to`` and ``set_eps`` refold by themselves.
    """

    def __init__(self, in_channels, planes, stride=1, downsample=False, eps=1e-5, rng=None):
        for name, v in (("in_channels", in_channels), ("planes", planes), ("stride", stride)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be an int >= 1; got {v!r}")
        in_channels, planes, stride = int(in_channels), int(planes), int(stride)
        out = EXPANSION * planes
        if not downsample and (stride != 1 or in_channels != out):
            raise ValueError(
                f"a block with stride {stride} from {in_channels} to {out} channels needs "
                "downsample=True (its input cannot be added to its output as it is)"
            )
        rng = make_rng(rng)
        self.conv1 = _frozen_conv(in_channels, planes, 1, 1, 0, rng)
        self.bn1 = FrozenBatchNorm2d(planes, eps)
        self.conv2 = _frozen_conv(planes, planes, 3, stride, 1, rng)
        self.bn2 = FrozenBatchNorm2d(planes, eps)
        self.conv3 = _frozen_conv(planes, out, 1, 1, 0, rng)
        self.bn3 = FrozenBatchNorm2d(out, eps)
        self.downsample = None
        if downsample:
            self.downsample = Sequential(
                _frozen_conv(in_channels, out, 1, stride, 0, rng), FrozenBatchNorm2d(out, eps)
            )
        self.in_channels, self.out_channels, self.stride = in_channels, out, stride
        self.fold()

    def fold(self) -> None:
        """Recompute the folded ``(weight, bias)`` of every conv + batch norm pair of the block."""
        pairs = [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)]
        if self.downsample is not None:
            pairs.append((self.downsample[0], self.downsample[1]))
        self._folded = [(_fold(conv, bn), conv.stride[0], conv.padding[0]) for conv, bn in pairs]

    def forward(self, x):
        """``(N, in_channels, H, W)`` float -> ``(N, 4 planes, Ho, Wo)``, ``Ho = (H - 1) // stride + 1``.

        No cache is kept; the result dtype is that of ``x`` and the parameters.
        """
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}, H, W); got {x.shape}")
        (w1, b1), s1, p1 = self._folded[0]
        out = conv2d_forward(x, w1, b1, s1, p1)[0]  # conv1 + bn1
        np.maximum(out, 0, out=out)
        (w2, b2), s2, p2 = self._folded[1]
        out = conv2d_forward(out, w2, b2, s2, p2)[0]  # conv2 + bn2
        np.maximum(out, 0, out=out)
        (w3, b3), s3, p3 = self._folded[2]
        out = conv2d_forward(out, w3, b3, s3, p3)[0]  # conv3 + bn3
        if self.downsample is None:
            out += x
        else:
            (wd, bd), sd, pd = self._folded[3]
            out += conv2d_forward(x, wd, bd, sd, pd)[0]
        np.maximum(out, 0, out=out)
        return out

    __call__ = forward


class ResNetBody(_Folded):
    """``ResNetBody(layers=(3, 4, 6, 3), eps=1e-5, rng=None)``: torchvision's ``resnet50`` up to
    ``layer4``, without ``avgpool`` and ``fc``; frozen batch norm folded into the convolutions.

    Children ``conv1, bn1, layer1 .. layer4`` (each layer a ``Sequential`` of :class:`Bottleneck`),
    so ``named_parameters()`` gives torchvision's keys without the ``backbone.body.`` prefix:
    ``conv1.weight``, ``bn1.weight``, ..., ``layer1.0.downsample.1.running_var``, ... (265 names for
    ``(3, 4, 6, 3)``). Random initialisation: He-normal convolutions, batch norms the identity
    (weight 1, bias 0, mean 0, var 1), float32.

    Attributes:
        out_channels_list: ``[256, 512, 1024, 2048]``, the channels of C2..C5.
        strides: ``[4, 8, 16, 32]``, image pixels per cell of C2..C5.

    Memory: the folded weights are a second copy of the convolutions (about 94 MB for ResNet-50
    in float32). After editing parameters in place call :meth:`fold`; ``load_state_dict``, ``to``
    and :meth:`set_eps` (0.0 for torchvision's COCO v1 files) refold by themselves.
    """

    out_channels_list = [256, 512, 1024, 2048]
    strides = [4, 8, 16, 32]

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), eps: float = 1e-5, rng=None):
        layers = tuple(layers)
        if len(layers) != 4 or any(int(n) != n or n < 1 for n in layers):
            raise ValueError(f"layers must be four block counts >= 1; got {layers!r}")
        rng = make_rng(rng)
        self.conv1 = _frozen_conv(3, 64, 7, 2, 3, rng)
        self.bn1 = FrozenBatchNorm2d(64, eps)
        c_in = 64
        for i, (blocks, planes) in enumerate(
            zip(layers, (64, 128, 256, 512), strict=True), start=1
        ):
            stride = 1 if i == 1 else 2
            seq = [Bottleneck(c_in, planes, stride, downsample=True, eps=eps, rng=rng)]
            c_in = EXPANSION * planes
            seq += [Bottleneck(c_in, planes, eps=eps, rng=rng) for _ in range(int(blocks) - 1)]
            setattr(self, f"layer{i}", Sequential(*seq))
        self.fold()

    def stages(self) -> list[Sequential]:
        """``[layer1, layer2, layer3, layer4]``."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def fold(self) -> None:
        """Recompute every folded convolution (the stem's and each block's) from the parameters."""
        self._stem = _fold(self.conv1, self.bn1)
        for layer in self.stages():
            for block in layer:
                block.fold()

    def forward(self, x) -> list[np.ndarray]:
        """C2..C5 of a batch of images.

        Args:
            x: ``(N, 3, H, W)`` float32 (or float64 after ``to(np.float64)``), normalised as the
                weights expect (torchvision: ImageNet mean and std, RGB).

        Returns:
            ``[C2, C3, C4, C5]``: ``(N, 256, H2, W2)``, ``(N, 512, H3, W3)``, ``(N, 1024, H4, W4)``,
            ``(N, 2048, H5, W5)`` with ``H2 = ceil(H / 4)``, ``H3 = ceil(H2 / 2)``, ...; exactly
            ``H / 4 .. H / 32`` when ``H`` is a multiple of 32. No cache is kept.
        """
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W); got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"x must be float32 or float64; got dtype {x.dtype}")
        w, b = self._stem
        out = conv2d_forward(x, w, b, 2, 3)[0]  # (N, 64, H/2, W/2): conv1 + bn1
        np.maximum(out, 0, out=out)
        out = max_pool2d_forward(out, 3, 2, 1)[0]  # (N, 64, H/4, W/4)
        features = []
        for layer in self.stages():
            for block in layer:
                out = block(out)
            features.append(out)
        return features

    __call__ = forward
