"""Convolution and transposed convolution, each one BLAS matrix product over an im2col buffer.

A convolution is a matrix product in disguise. Gather every ``kh x kw x C`` input patch into one row of
a matrix (*im2col*); then the whole layer is ``cols @ W`` with ``W`` the filters as columns. The four
passes pair up:

==========================  ==========================================
conv forward                im2col(x) @ W
conv backward, input        col2im(dout @ W^T)        (scatter patches back)
transposed conv forward     col2im(x @ W)             (= conv backward, input)
transposed conv backward    im2col(dout) @ W^T        (= conv forward)
==========================  ==========================================

Layouts: public tensors are ``N x C x H x W`` (torchvision's). Internally patches are gathered from an
``N x H x W x C`` copy, so that each patch row is a few contiguous runs of memory; that makes im2col
several times faster than gathering from ``N x C x H x W``. Weights use PyTorch's layouts:
``(F, C, kh, kw)`` for ``Conv2d`` and ``(C, F, kh, kw)`` for ``ConvTranspose2d``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .init import kaiming_normal
from .module import Module, Parameter

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_reference",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward",
    "Conv2d",
    "ConvTranspose2d",
]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _im2col(xp: np.ndarray, kh: int, kw: int, stride: tuple[int, int], out_hw) -> np.ndarray:
    """Patches of a padded ``(N, Hp, Wp, C)`` array: ``(N * Ho * Wo, kh * kw * C)``, ``(kh, kw, C)``
    order within a row."""
    Ho, Wo = out_hw
    windows = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, Hp-kh+1, Wp-kw+1, C, kh, kw)
    windows = windows[
        :, : (Ho - 1) * stride[0] + 1 : stride[0], : (Wo - 1) * stride[1] + 1 : stride[1]
    ]
    # (N, Ho, Wo, kh, kw, C): each (kw, C) run is contiguous in the input, so the copy is cheap
    return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(len(xp) * Ho * Wo, -1)


def _col2im(cols: np.ndarray, padded_shape, kh: int, kw: int, stride, out_hw) -> np.ndarray:
    """Adjoint of :func:`_im2col`: add each patch row back into a ``(N, Hp, Wp, C)`` array.

    One strided slice-add per kernel offset (``kh * kw`` steps), never a loop over pixels.
    """
    N, Hp, Wp, C = padded_shape
    Ho, Wo = out_hw
    patches = cols.reshape(N, Ho, Wo, kh, kw, C)
    xp = np.zeros(padded_shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[
                :,
                i : i + stride[0] * (Ho - 1) + 1 : stride[0],
                j : j + stride[1] * (Wo - 1) + 1 : stride[1],
            ] += patches[:, :, :, i, j]
    return xp


class ConvCache(NamedTuple):
    """What the convolution's backward needs."""

    cols: np.ndarray  # (N * Ho * Wo, kh * kw * C) input patches
    weight: np.ndarray  # (F, C, kh, kw)
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    stride: tuple[int, int]
    padding: tuple[int, int]


def _check_input(x, channels: int, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must have shape (N, {channels}, H, W); got {x.shape}")
    return x


def conv2d_forward(x, weight, bias, stride=1, padding=0) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Args:
        x: ``(N, C, H, W)`` input.
        weight: ``(F, C, kh, kw)`` filters; ``bias``: ``(F,)`` or ``None``.
        stride, padding: ints or ``(h, w)`` pairs; zero padding.

    Returns:
        ``(out, cache)``, ``out`` of shape ``(N, F, Ho, Wo)`` with
        ``Ho = (H + 2 ph - kh) // sh + 1`` (likewise ``Wo``), the dtype of ``x``.
    """
    F, C, kh, kw = weight.shape
    x = _check_input(x, C)
    stride, padding = _pair(stride), _pair(padding)
    N, _, H, W = x.shape
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw) // stride[1] + 1
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"input {H}x{W} is smaller than the {kh}x{kw} kernel after padding")
    ph, pw = padding
    xp = np.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=x.dtype)  # (N, Hp, Wp, C)
    xp[:, ph : ph + H, pw : pw + W] = x.transpose(
        0, 2, 3, 1
    )  # layout change and padding in one copy
    cols = _im2col(xp, kh, kw, stride, (Ho, Wo))  # (N Ho Wo, kh kw C)
    w_mat = weight.transpose(2, 3, 1, 0).reshape(-1, F)  # (kh kw C, F)
    out = cols @ w_mat  # the one matrix product: (N Ho Wo, F)
    if bias is not None:
        out += bias
    out = np.ascontiguousarray(out.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2))  # (N, F, Ho, Wo)
    return out, ConvCache(cols, weight, x.shape, stride, padding)


def conv2d_backward(dout, cache: ConvCache, input_grad: bool = True):
    """Gradients of :func:`conv2d_forward`.

    Args:
        input_grad: compute ``dx``; a network's first layer needs none (the image is not learned).

    Returns:
        ``(dx (N, C, H, W) or None, dweight (F, C, kh, kw), dbias (F,))``.
    """
    F, C, kh, kw = cache.weight.shape
    N, _, H, W = cache.x_shape
    ph, pw = cache.padding
    d = np.ascontiguousarray(dout.transpose(0, 2, 3, 1))  # (N, Ho, Wo, F)
    Ho, Wo = d.shape[1:3]
    d = d.reshape(-1, F)  # (N Ho Wo, F)
    dweight = (d.T @ cache.cols).reshape(F, kh, kw, C).transpose(0, 3, 1, 2)
    dbias = d.sum(axis=0)
    if not input_grad:
        return None, np.ascontiguousarray(dweight), dbias
    # col2im fused with the product: one small GEMM per kernel offset, added straight into place
    # (about twice as fast as forming all of dcols = d @ W^T and scattering it afterwards)
    sh, sw = cache.stride
    dxp = np.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=d.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw] += (
                d @ cache.weight[:, :, i, j]
            ).reshape(N, Ho, Wo, C)
    dx = np.ascontiguousarray(dxp[:, ph : ph + H, pw : pw + W].transpose(0, 3, 1, 2))
    return dx, np.ascontiguousarray(dweight), dbias


def conv2d_reference(x, weight, bias, stride=1, padding=0) -> np.ndarray:
    """The definition, loop by loop over output pixels: the slow teaching path of the tests."""
    F, C, kh, kw = weight.shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, _, Hp, Wp = xp.shape
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, weight))
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                patch = xp[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]  # (C, kh, kw)
                out[n, :, i, j] = np.tensordot(weight, patch, axes=3)
    return out + (0 if bias is None else bias[None, :, None, None])


class ConvTransposeCache(NamedTuple):
    """What the transposed convolution's backward needs."""

    x2: np.ndarray  # (N * H * W, C) the input as rows
    weight: np.ndarray  # (C, F, kh, kw)
    x_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def conv_transpose2d_forward(x, weight, bias, stride=1, padding=0):
    """Transposed convolution ("deconvolution"): each input pixel stamps a weighted ``kh x kw`` kernel
    onto the output, ``stride`` pixels apart; the mask head's 2x upsampling uses ``kh = stride = 2``.

    Args:
        x: ``(N, C, H, W)``; ``weight``: ``(C, F, kh, kw)``; ``bias``: ``(F,)`` or ``None``.

    Returns:
        ``(out, cache)``, ``out`` ``(N, F, Ho, Wo)`` with ``Ho = (H - 1) sh - 2 ph + kh``.
    """
    C, F, kh, kw = weight.shape
    x = _check_input(x, C)
    stride, padding = _pair(stride), _pair(padding)
    N, _, H, W = x.shape
    Hp, Wp = (H - 1) * stride[0] + kh, (W - 1) * stride[1] + kw
    Ho, Wo = Hp - 2 * padding[0], Wp - 2 * padding[1]
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"padding {padding} leaves no output for a {H}x{W} input")
    x2 = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1, C)  # (N H W, C)
    cols = x2 @ weight.transpose(0, 2, 3, 1).reshape(C, -1)  # (N H W, kh kw F)
    outp = _col2im(cols, (N, Hp, Wp, F), kh, kw, stride, (H, W))
    out = outp[:, padding[0] : padding[0] + Ho, padding[1] : padding[1] + Wo]
    if bias is not None:
        out = out + bias
    out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out, ConvTransposeCache(x2, weight, x.shape, stride, padding)


def conv_transpose2d_backward(dout, cache: ConvTransposeCache):
    """Gradients of :func:`conv_transpose2d_forward`: ``(dx, dweight (C, F, kh, kw), dbias (F,))``."""
    C, F, kh, kw = cache.weight.shape
    N, _, H, W = cache.x_shape
    ph, pw = cache.padding
    d = np.pad(dout.transpose(0, 2, 3, 1), ((0, 0), (ph, ph), (pw, pw), (0, 0)))  # (N, Hp, Wp, F)
    dcols = _im2col(d, kh, kw, cache.stride, (H, W))  # (N H W, kh kw F)
    dbias = dout.sum(axis=(0, 2, 3))
    dweight = (cache.x2.T @ dcols).reshape(C, kh, kw, F).transpose(0, 3, 1, 2)
    dx = dcols @ cache.weight.transpose(0, 2, 3, 1).reshape(C, -1).T  # (N H W, C)
    dx = np.ascontiguousarray(dx.reshape(N, H, W, C).transpose(0, 3, 1, 2))
    return dx, np.ascontiguousarray(dweight), dbias


class Conv2d(Module):
    """``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None)``:
    He-initialised weights ``(F, C, kh, kw)``, zero bias, float32; ``rng`` makes it reproducible.
    With ``input_grad=False`` (a network's first layer) ``backward`` skips ``dx`` and returns ``None``.
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None,
        input_grad=True,
    ):  # fmt: skip
        kh, kw = _pair(kernel_size)
        self.input_grad = bool(input_grad)
        self.weight = Parameter(kaiming_normal((out_channels, in_channels, kh, kw), rng))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None
        self.stride, self.padding = _pair(stride), _pair(padding)

    def _forward(self, x):
        b = self.bias.data if self.bias is not None else None
        return conv2d_forward(x, self.weight.data, b, self.stride, self.padding)

    def _backward(self, dout, cache):
        dx, dw, db = conv2d_backward(dout, cache, self.input_grad)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class ConvTranspose2d(Module):
    """``ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None)``:
    weights ``(C, F, kh, kw)`` as in PyTorch, He-initialised on the fan-in of each output pixel."""

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None
    ):
        kh, kw = _pair(kernel_size)
        w = kaiming_normal((out_channels, in_channels, kh, kw), rng).transpose(1, 0, 2, 3)
        self.weight = Parameter(np.ascontiguousarray(w))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None
        self.stride, self.padding = _pair(stride), _pair(padding)

    def _forward(self, x):
        b = self.bias.data if self.bias is not None else None
        return conv_transpose2d_forward(x, self.weight.data, b, self.stride, self.padding)

    def _backward(self, dout, cache):
        dx, dw, db = conv_transpose2d_backward(dout, cache)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx
