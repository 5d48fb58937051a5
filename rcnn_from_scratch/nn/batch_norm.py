"""Frozen batch normalisation, as torchvision's detectors use it, and folding it into a convolution.

A detector fine-tuned from ImageNet weights keeps batch norm's statistics fixed (a batch of two
images is too small to estimate them). Batch norm then is a fixed per-channel affine map::

    scale = weight / sqrt(running_var + eps)        # (C,)
    shift = bias - running_mean * scale             # (C,)
    y     = x * scale + shift                       # per channel c of (N, C, H, W)

torchvision's ``ops.misc.FrozenBatchNorm2d`` computes exactly this, in this order, in float32; its
``weight, bias, running_mean, running_var`` are buffers, not parameters. Here they are
:class:`~rcnn_from_scratch.nn.module.Parameter` objects without a gradient
(``requires_grad=False``), so that a state dict names them as torchvision does and a 44-million-
parameter frozen model does not carry a second, unused copy of itself.

Because the map is affine, it folds into the convolution before it: conv followed by frozen BN is one
convolution with filters ``W * scale`` and bias ``b * scale + shift`` (:func:`fold_batch_norm`). That
removes a pass over every feature map at inference; the folded result differs from the two-step one
only by float32 rounding.

torchvision's COCO v1 detection weights use ``eps = 0`` (``overwrite_eps``); ImageNet backbones keep
1e-5. With ``eps = 0`` a zero variance would divide by zero, so both functions check
``running_var + eps > 0`` and name the first channel that fails.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .module import Module, Parameter

__all__ = [
    "frozen_batch_norm_scale_shift",
    "frozen_batch_norm",
    "frozen_batch_norm_forward",
    "frozen_batch_norm_backward",
    "fold_batch_norm",
    "FrozenBatchNorm2d",
]


def _statistics(weight, bias, running_mean, running_var, channels=None, what="batch norm"):
    """The four ``(C,)`` arrays as arrays, checked: one length (``channels`` if given), float."""
    arrays = {
        "weight": np.asarray(weight),
        "bias": np.asarray(bias),
        "running_mean": np.asarray(running_mean),
        "running_var": np.asarray(running_var),
    }
    expected = len(arrays["weight"]) if channels is None else channels
    for name, a in arrays.items():
        if a.shape != (expected,):
            raise ValueError(f"{what} {name} must have shape ({expected},); got {a.shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{what} {name} must be float32 or float64; got dtype {a.dtype}")
    return arrays.values()


def frozen_batch_norm_scale_shift(weight, bias, running_mean, running_var, eps=1e-5):
    """``(scale, shift)``, each ``(C,)``: the affine map ``y = x * scale + shift`` of frozen BN.

    ``scale = weight * rsqrt(running_var + eps)``, ``shift = bias - running_mean * scale``, in the
    result dtype of the four arrays (float32 for float32 statistics: ``eps``, a Python float, does
    not widen it). ``rsqrt`` is computed as ``1 / sqrt`` (each step correctly rounded), as ATen's CPU
    ``rsqrt`` does.

    Raises:
        ValueError: on shape or dtype mismatch, or if ``running_var + eps <= 0`` (or NaN) for some
            channel, which is named.
    """
    weight, bias, running_mean, running_var = _statistics(weight, bias, running_mean, running_var)
    dtype = np.result_type(weight, bias, running_mean, running_var)
    denominator = running_var.astype(dtype) + dtype.type(eps)
    bad = np.flatnonzero(~(denominator > 0))
    if len(bad):
        c = int(bad[0])
        raise ValueError(
            f"running_var + eps must be > 0 in every channel; channel {c} has running_var "
            f"{running_var[c]!r} and eps {eps!r} ({len(bad)} channel(s) fail)"
        )
    scale = weight.astype(dtype) * (dtype.type(1) / np.sqrt(denominator))
    shift = bias.astype(dtype) - running_mean.astype(dtype) * scale
    return scale, shift


class FrozenBatchNormCache(NamedTuple):
    """All the backward needs: the gradient of ``x * scale + shift`` is ``dout * scale``."""

    scale: np.ndarray  # (C,)


def frozen_batch_norm_forward(x, weight, bias, running_mean, running_var, eps=1e-5):
    """Frozen batch norm with its cache (the pair; :func:`frozen_batch_norm` is the output only).

    Args:
        x: ``(N, C, H, W)`` float.
        weight, bias, running_mean, running_var: ``(C,)`` float.
        eps: added to ``running_var`` (torchvision's default 1e-5; its COCO detectors use 0).

    Returns:
        ``(y, cache)``: ``y`` ``(N, C, H, W)`` in the result dtype of ``x`` and the statistics.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W); got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be float32 or float64; got dtype {x.dtype}")
    _statistics(weight, bias, running_mean, running_var, x.shape[1], "for x's channels,")
    scale, shift = frozen_batch_norm_scale_shift(weight, bias, running_mean, running_var, eps)
    y = x * scale[:, None, None]  # (N, C, H, W)
    y += shift[:, None, None]
    return y, FrozenBatchNormCache(scale)


def frozen_batch_norm_backward(dout, cache: FrozenBatchNormCache) -> np.ndarray:
    """``dx = dout * scale`` per channel; the statistics are frozen, so they get no gradient.

    Args:
        dout: ``(N, C, H, W)``, the gradient of the output.

    Returns:
        ``dx`` ``(N, C, H, W)``.
    """
    return np.asarray(dout) * cache.scale[:, None, None]


def frozen_batch_norm(x, weight, bias, running_mean, running_var, eps=1e-5) -> np.ndarray:
    """torchvision's ``FrozenBatchNorm2d`` forward: ``y = x * scale + shift`` per channel.

    Args:
        x: ``(N, C, H, W)`` float.
        weight, bias, running_mean, running_var: ``(C,)`` float.
        eps: added to ``running_var``.

    Returns:
        ``y`` ``(N, C, H, W)``, with ``scale = weight * rsqrt(running_var + eps)`` and
        ``shift = bias - running_mean * scale`` (see :func:`frozen_batch_norm_scale_shift`).
    """
    return frozen_batch_norm_forward(x, weight, bias, running_mean, running_var, eps)[0]


def fold_batch_norm(
    conv_weight, conv_bias, bn_weight, bn_bias, running_mean, running_var, eps=1e-5
) -> tuple[np.ndarray, np.ndarray]:
    """The one convolution equal to a convolution followed by frozen batch norm.

    ``conv(x, W', b') == frozen_batch_norm(conv(x, W, b), ...)`` with
    ``W' = W * scale[:, None, None, None]`` and ``b' = b * scale + shift`` (``b = 0`` when the
    convolution has no bias, as every ResNet convolution).

    Args:
        conv_weight: ``(F, C, kh, kw)`` filters (PyTorch's ``Conv2d`` layout).
        conv_bias: ``(F,)`` or ``None``.
        bn_weight, bn_bias, running_mean, running_var: ``(F,)``, the batch norm after it.
        eps: added to ``running_var``.

    Returns:
        ``(weight (F, C, kh, kw), bias (F,))``, new arrays in the result dtype of the inputs
        (float32 for float32 inputs).

    Raises:
        ValueError: on shape mismatch or a channel with ``running_var + eps <= 0``.
    """
    conv_weight = np.asarray(conv_weight)
    if conv_weight.ndim != 4:
        raise ValueError(f"conv_weight must have shape (F, C, kh, kw); got {conv_weight.shape}")
    F = conv_weight.shape[0]
    _statistics(bn_weight, bn_bias, running_mean, running_var, F, "for conv_weight's filters, bn")
    if conv_bias is not None and np.shape(conv_bias) != (F,):
        raise ValueError(f"conv_bias must have shape ({F},) or be None; got {np.shape(conv_bias)}")
    scale, shift = frozen_batch_norm_scale_shift(bn_weight, bn_bias, running_mean, running_var, eps)
    dtype = np.result_type(conv_weight, scale, *(() if conv_bias is None else (conv_bias,)))
    weight = conv_weight.astype(dtype) * scale.astype(dtype)[:, None, None, None]
    scale, shift = scale.astype(dtype), shift.astype(dtype)
    bias = shift if conv_bias is None else np.asarray(conv_bias).astype(dtype) * scale + shift
    return weight, bias


class FrozenBatchNorm2d(Module):
    """``FrozenBatchNorm2d(num_features, eps=1e-5)``: torchvision's layer of the same name.

    Parameters ``weight`` (ones), ``bias`` (zeros), ``running_mean`` (zeros), ``running_var`` (ones),
    each ``(C,)`` float32 and created with ``requires_grad=False``: load real values with
    ``load_state_dict``. ``backward`` returns ``dx`` only and gives the statistics no gradient (they
    are frozen; an optimiser skips them).
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f"num_features must be an int >= 1; got {num_features!r}")
        C = int(num_features)
        self.weight = Parameter(np.ones(C, np.float32), requires_grad=False)
        self.bias = Parameter(np.zeros(C, np.float32), requires_grad=False)
        self.running_mean = Parameter(np.zeros(C, np.float32), requires_grad=False)
        self.running_var = Parameter(np.ones(C, np.float32), requires_grad=False)
        self.eps = float(eps)

    def _forward(self, x):
        stats = (self.weight, self.bias, self.running_mean, self.running_var)
        return frozen_batch_norm_forward(x, *(p.data for p in stats), self.eps)

    def _backward(self, dout, cache):
        return frozen_batch_norm_backward(dout, cache)

    def __repr__(self) -> str:
        return f"FrozenBatchNorm2d({len(self.weight.data)}, eps={self.eps})"
