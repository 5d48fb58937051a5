"""Convolution and transposed convolution, each one BLAS matrix product over an im2col buffer.

A convolution is a matrix product in disguise. Gather every ``C x kh x kw`` input patch into one
column of a matrix (*im2col*); then the whole layer is ``W @ cols`` with the filters ``W`` as rows.
The four passes pair up:

==========================  =====================================================
conv forward                ``W @ im2col(x)``
conv backward, weight       ``dout @ im2col(x).T``
conv backward, input        ``col2im(W.T @ dout)``  (scatter patches back and add)
transposed conv forward     ``col2im(W.T @ x)``     (= conv backward, input)
transposed conv backward    ``W @ im2col(dout)``    (= conv forward)
==========================  =====================================================

Layout of the buffer: ``cols`` is ``(C * kh * kw, N * Ho * Wo)``, rows in ``(c, i, j)`` order, so
``weight.reshape(F, -1)`` multiplies it as it is (Caffe's im2col). Gathering it from an
``N x C x H x W`` tensor copies runs of ``Wo`` neighbouring pixels, which is cheap. im2col is a
strided *view* (``sliding_window_view``) plus one copy; col2im is one strided add per kernel offset
(``kh * kw`` steps), never a loop over pixels.

Weights use PyTorch's layouts: ``(F, C, kh, kw)`` for ``Conv2d`` and ``(C, F, kh, kw)`` for
``ConvTranspose2d``. Every op is a pure ``*_forward -> (out, cache)`` / ``*_backward(dout, cache)``
pair; the layers wrap them as ``module.py`` describes. ``conv2d_reference`` and
``conv_transpose2d_reference`` are the slow loop definitions the tests compare against.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .init import kaiming_normal
from .module import Module, Parameter

__all__ = [
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_reference",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward",
    "conv_transpose2d_reference",
    "Conv2d",
    "ConvTranspose2d",
]


def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3, 2) -> (3, 2)``; a ``ValueError`` naming ``name`` below ``minimum``."""
    pair = (v, v) if np.isscalar(v) else tuple(v)
    if len(pair) != 2 or any(int(p) != p or p < minimum for p in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them; got {v!r}")
    return int(pair[0]), int(pair[1])


def _check_input(x, channels: int, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must have shape (N, {channels}, H, W); got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be float32 or float64; got dtype {x.dtype}")
    return x


def _pad(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """Zero padding of H and W (one allocation and one copy; faster than ``np.pad``)."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    return xp


def im2col(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Patches of an (already padded) ``(N, C, Hp, Wp)`` array as columns.

    Returns:
        ``(C * kh * kw, N * Ho * Wo)``, rows in ``(c, i, j)`` order, columns in ``(n, y, x)`` order,
        with ``Ho = (Hp - kh) // sh + 1`` (likewise ``Wo``).
    """
    (kh, kw), (sh, sw) = kernel, stride
    N, C, Hp, Wp = xp.shape
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))  # (N, C, Hp-kh+1, Wp-kw+1, kh, kw)
    windows = windows[:, :, : (Ho - 1) * sh + 1 : sh, : (Wo - 1) * sw + 1 : sw]
    # (C, kh, kw, N, Ho, Wo): the copy moves runs of Wo neighbouring pixels
    cols = np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3))
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def col2im(cols: np.ndarray, padded_shape, kernel, stride) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every patch column back where it came from.

    Args:
        cols: ``(C * kh * kw, N * Ho * Wo)``.
        padded_shape: ``(N, C, Hp, Wp)`` of the array the patches were (or would be) taken from.

    Returns:
        ``(N, C, Hp, Wp)``, a transposed view of a ``(C, N, Hp, Wp)`` buffer (callers crop the
        padding and copy once).
    """
    N, C, Hp, Wp = padded_shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    patches = cols.reshape(C, kh, kw, N, Ho, Wo)
    out = np.zeros((C, N, Hp, Wp), dtype=cols.dtype)
    for i in range(kh):  # kh * kw strided adds, each over the whole batch
        for j in range(kw):
            out[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw] += patches[
                :, i, j
            ]
    return out.transpose(1, 0, 2, 3)


def _to_rows(t: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(C, N * H * W)``: channels as rows, the layout the GEMMs use."""
    N, C, H, W = t.shape
    return np.ascontiguousarray(t.transpose(1, 0, 2, 3)).reshape(C, N * H * W)


def _from_rows(m: np.ndarray, N: int, H: int, W: int, bias=None) -> np.ndarray:
    """``(C, N * H * W)`` -> ``(N, C, H, W)``, contiguous, plus ``bias`` ``(C,)`` if given (added
    during the copy, which saves a pass over the output)."""
    out = np.empty((N, len(m), H, W), dtype=m.dtype)
    rows = m.reshape(len(m), N, H, W).transpose(1, 0, 2, 3)
    if bias is None:
        out[...] = rows
    else:
        np.add(rows, np.asarray(bias, m.dtype)[:, None, None], out=out)
    return out


# --- Conv2d -------------------------------------------------------------------------------------


class ConvCache(NamedTuple):
    """What the convolution's backward needs."""

    cols: np.ndarray  # (C * kh * kw, N * Ho * Wo) input patches
    weight: np.ndarray  # (F, C, kh, kw)
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    stride: tuple[int, int]
    padding: tuple[int, int]


def conv2d_forward(x, weight, bias=None, stride=1, padding=0) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation, as in every deep-learning library), as one GEMM.

    Args:
        x: ``(N, C, H, W)`` float32 or float64.
        weight: ``(F, C, kh, kw)`` filters; ``bias``: ``(F,)`` or ``None``.
        stride, padding: ints or ``(h, w)`` pairs; zero padding on both sides.

    Returns:
        ``(out, cache)``: ``out`` ``(N, F, Ho, Wo)``, ``Ho = (H + 2 ph - kh) // sh + 1`` (likewise
        ``Wo``), in the result dtype of ``x`` and ``weight``.

    Raises:
        ValueError: if ``x`` has not ``C`` channels or is smaller than the kernel after padding.
    """
    weight = np.asarray(weight)
    F, C, kh, kw = weight.shape
    x = _check_input(x, C)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    N, _, H, W = x.shape
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw) // stride[1] + 1
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"x of size {H}x{W} is smaller than the {kh}x{kw} kernel after padding")
    cols = im2col(_pad(x, padding), (kh, kw), stride)  # (C kh kw, N Ho Wo)
    out = weight.reshape(F, -1) @ cols  # the one matrix product: (F, N Ho Wo)
    return _from_rows(out, N, Ho, Wo, bias), ConvCache(cols, weight, x.shape, stride, padding)


def conv2d_backward(dout, cache: ConvCache, input_grad: bool = True):
    """Gradients of :func:`conv2d_forward`.

    Args:
        dout: ``(N, F, Ho, Wo)``, the gradient of the output.
        input_grad: compute ``dx``; a network's first layer needs none (the image is not learned).

    Returns:
        ``(dx (N, C, H, W) or None, dweight (F, C, kh, kw), dbias (F,))``.
    """
    F, C, kh, kw = cache.weight.shape
    N, _, H, W = cache.x_shape
    ph, pw = cache.padding
    d = _to_rows(np.asarray(dout))  # (F, N Ho Wo)
    dweight = (d @ cache.cols.T).reshape(F, C, kh, kw)
    dbias = d.sum(axis=1)
    if not input_grad:
        return None, dweight, dbias
    dcols = cache.weight.reshape(F, -1).T @ d  # (C kh kw, N Ho Wo)
    dxp = col2im(dcols, (N, C, H + 2 * ph, W + 2 * pw), (kh, kw), cache.stride)
    return np.ascontiguousarray(dxp[:, :, ph : ph + H, pw : pw + W]), dweight, dbias


def conv2d_reference(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """The definition, loop by loop over output pixels: the slow teaching path of the tests.

    ``out[n, f, y, x] = bias[f] + sum_{c, i, j} weight[f, c, i, j] * xp[n, c, y sh + i, x sw + j]``
    """
    F, C, kh, kw = weight.shape
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, _, Hp, Wp = xp.shape
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, weight))
    for n in range(N):
        for y in range(Ho):
            for x_ in range(Wo):
                patch = xp[n, :, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw]  # (C, kh, kw)
                out[n, :, y, x_] = np.tensordot(weight, patch, axes=3)
    return out + (0 if bias is None else bias[None, :, None, None])


# --- ConvTranspose2d ----------------------------------------------------------------------------


class ConvTransposeCache(NamedTuple):
    """What the transposed convolution's backward needs."""

    x_rows: np.ndarray  # (C, N * H * W) the input, channels as rows
    weight: np.ndarray  # (C, F, kh, kw)
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    stride: tuple[int, int]
    padding: tuple[int, int]


def conv_transpose2d_forward(x, weight, bias=None, stride=1, padding=0):
    """Transposed convolution ("deconvolution"), the adjoint of :func:`conv2d_forward`.

    Each input pixel stamps its ``F x kh x kw`` weighted kernel onto the output, ``stride`` pixels
    apart, and overlapping stamps add up; ``padding`` crops that many pixels from each border. The
    mask head's 2x upsampling is ``kh = kw = stride = 2``, ``padding = 0`` (stamps do not overlap).

    Args:
        x: ``(N, C, H, W)``; ``weight``: ``(C, F, kh, kw)`` (PyTorch's layout); ``bias``: ``(F,)``
            or ``None``.

    Returns:
        ``(out, cache)``: ``out`` ``(N, F, Ho, Wo)`` with ``Ho = (H - 1) sh - 2 ph + kh``.
    """
    weight = np.asarray(weight)
    C, F, kh, kw = weight.shape
    x = _check_input(x, C)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    N, _, H, W = x.shape
    Hp, Wp = (H - 1) * stride[0] + kh, (W - 1) * stride[1] + kw
    Ho, Wo = Hp - 2 * padding[0], Wp - 2 * padding[1]
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"padding {padding} leaves no output for an input of size {H}x{W}")
    x_rows = _to_rows(x)  # (C, N H W)
    cols = weight.reshape(C, -1).T @ x_rows  # the one matrix product: (F kh kw, N H W)
    outp = col2im(cols, (N, F, Hp, Wp), (kh, kw), stride)  # (N, F, Hp, Wp)
    out = outp[:, :, padding[0] : padding[0] + Ho, padding[1] : padding[1] + Wo]
    out = np.ascontiguousarray(out)
    if bias is not None:
        out += np.asarray(bias)[:, None, None]
    return out, ConvTransposeCache(x_rows, weight, x.shape, stride, padding)


def conv_transpose2d_backward(dout, cache: ConvTransposeCache):
    """Gradients of :func:`conv_transpose2d_forward`.

    Returns:
        ``(dx (N, C, H, W), dweight (C, F, kh, kw), dbias (F,))``.
    """
    C, F, kh, kw = cache.weight.shape
    N, _, H, W = cache.x_shape
    dout = np.asarray(dout)
    dcols = im2col(_pad(dout, cache.padding), (kh, kw), cache.stride)  # (F kh kw, N H W)
    dweight = (cache.x_rows @ dcols.T).reshape(C, F, kh, kw)
    dx = _from_rows(cache.weight.reshape(C, -1) @ dcols, N, H, W)
    return dx, dweight, dout.sum(axis=(0, 2, 3))


def conv_transpose2d_reference(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """The definition, loop by loop over input pixels: each stamps ``x[n, :, y, x] . weight``."""
    C, F, kh, kw = weight.shape
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    N, _, H, W = x.shape
    outp = np.zeros((N, F, (H - 1) * sh + kh, (W - 1) * sw + kw), np.result_type(x, weight))
    for n in range(N):
        for y in range(H):
            for x_ in range(W):
                stamp = np.tensordot(x[n, :, y, x_], weight, axes=1)  # (F, kh, kw)
                outp[n, :, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw] += stamp
    out = outp[:, :, ph : outp.shape[2] - ph, pw : outp.shape[3] - pw]
    return out + (0 if bias is None else bias[None, :, None, None])


# --- the layers ---------------------------------------------------------------------------------


class Conv2d(Module):
    """``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None)``.

    Parameters ``weight`` ``(F, C, kh, kw)``, He-normal (fan-in ``C kh kw``), and ``bias`` ``(F,)``,
    zero; float32. ``rng`` (a ``np.random.Generator`` or a seed) makes the initialisation
    reproducible. With ``input_grad=False`` (a network's first layer, whose input is the image)
    ``backward`` skips ``dx`` and returns ``None``.
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None,
        input_grad=True,
    ):  # fmt: skip
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        self.weight = Parameter(kaiming_normal((out_channels, in_channels, kh, kw), rng))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        self.input_grad = bool(input_grad)

    def _forward(self, x):
        b = None if self.bias is None else self.bias.data
        return conv2d_forward(x, self.weight.data, b, self.stride, self.padding)

    def _backward(self, dout, cache):
        dx, dw, db = conv2d_backward(dout, cache, self.input_grad)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class ConvTranspose2d(Module):
    """``ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
    rng=None)``.

    Parameters ``weight`` ``(C, F, kh, kw)`` as in PyTorch, He-normal with fan-in ``C kh kw`` (as
    Detectron2's ``c2_msra_fill``), and ``bias`` ``(F,)``, zero; float32.
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None
    ):
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        w = kaiming_normal((in_channels, out_channels, kh, kw), rng, fan_in=in_channels * kh * kw)
        self.weight = Parameter(w)
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)

    def _forward(self, x):
        b = None if self.bias is None else self.bias.data
        return conv_transpose2d_forward(x, self.weight.data, b, self.stride, self.padding)

    def _backward(self, dout, cache):
        dx, dw, db = conv_transpose2d_backward(dout, cache)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx
