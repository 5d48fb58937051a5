"""The transposed convolution ("deconvolution"): the adjoint of the convolution, which is how the
mask head doubles its 14 x 14 RoI maps to 28 x 28.

Its forward is the convolution's input gradient and its backward the convolution's forward (the
table in ``conv.py``): ``col2im(W.T @ x)`` and ``W @ im2col(dout)``, on the same im2col machinery.
For the mask head's 2x2 stride-2 kernel every output pixel is one entry of ``W.T @ x``, so the
output is written tile by tile, a few RoIs at a time (a quarter of ``conv.PATCH_BLOCK`` elements of
scratch). Weights use PyTorch's layout ``(C, F, kh, kw)``; ``conv_transpose2d_reference`` is the
slow loop definition the tests compare against.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import conv as _conv
from .conv import _check_input, _from_rows, _pad, _pair, _to_rows, _workspace, col2im, im2col
from .init import kaiming_normal
from .module import Module, Parameter

__all__ = ["ConvTransposeCache", "conv_transpose2d_forward", "conv_transpose2d_backward",
           "conv_transpose2d_reference", "ConvTranspose2d"]  # fmt: skip


class ConvTransposeCache(NamedTuple):
    """What the transposed convolution's backward needs."""

    x: np.ndarray  # (N, C, H, W) the input (a reference: it must not change before backward)
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
    if stride == (kh, kw) and padding == (0, 0):
        out = np.empty((N, F, Ho, Wo), np.result_type(x, weight))
        _tiled_transpose_forward(x, weight, bias, out)
        return out, ConvTransposeCache(x, weight, x.shape, stride, padding)
    x_rows = _to_rows(x)  # (C, N H W)
    cols = weight.reshape(C, -1).T @ x_rows  # the one matrix product: (F kh kw, N H W)
    patches = cols.reshape(F, kh, kw, N, H, W).transpose(3, 0, 1, 2, 4, 5)
    outp = col2im(patches, (N, F, Hp, Wp), stride)  # (N, F, Hp, Wp)
    out = outp[:, :, padding[0] : padding[0] + Ho, padding[1] : padding[1] + Wo]
    out = np.ascontiguousarray(out)
    if bias is not None:
        out += np.asarray(bias)[:, None, None]
    return out, ConvTransposeCache(x, weight, x.shape, stride, padding)


def _tiled_transpose_forward(x, weight, bias, out) -> None:
    """Stamps that tile the output without overlap (``stride == kernel``, no padding: the mask
    head's 2x2, stride 2). Each output pixel is one entry of ``cols = W.T @ x``, so col2im's
    zeroing and adds become one transposing copy, ``out[n, f, y kh + i, x kw + j] = cols[f, i, j,
    n, y, x]`` (the bias added on the way). A few images at a time, so that ``cols`` stays within
    a quarter of :data:`PATCH_BLOCK` elements whatever the batch (the mask head's 100 RoIs would
    need 80 MB at once): 8 MB, which the transposing copy reads back from the last-level cache
    (32 MB here). On the mask head's 100 RoIs, in one process: 115 ms with groups of 1, 2 or 4 M
    elements, 129 ms with 8 M; the whole batch in one GEMM took 114 ms, for 80 MB.
    """
    C, F, kh, kw = weight.shape
    N, _, H, W = x.shape
    w_t = weight.reshape(C, -1).T  # (F kh kw, C)
    b = None if bias is None else np.asarray(bias, out.dtype)[:, None, None]
    step = max(1, min(N, _conv.PATCH_BLOCK // 4 // (F * kh * kw * H * W)))
    for n in range(0, N, step):
        m = min(step, N - n)
        rows = _workspace("stamp_rows", (C, m, H, W), x.dtype)
        rows[...] = x[n : n + m].transpose(1, 0, 2, 3)
        cols = _workspace("stamps", (F * kh * kw, m * H * W), out.dtype)
        np.matmul(w_t, rows.reshape(C, m * H * W), out=cols)
        stamps = cols.reshape(F, kh, kw, m, H, W).transpose(
            1, 2, 3, 0, 4, 5
        )  # (kh, kw, m, F, H, W)
        tiles = out[n : n + m].reshape(m, F, H, kh, W, kw)
        for i in range(kh):  # kh kw copies, each reading whole rows of x-neighbours
            for j in range(kw):
                if b is None:
                    tiles[:, :, :, i, :, j] = stamps[i, j]
                else:
                    np.add(stamps[i, j], b, out=tiles[:, :, :, i, :, j])


def conv_transpose2d_backward(dout, cache: ConvTransposeCache):
    """Gradients of :func:`conv_transpose2d_forward`.

    Returns:
        ``(dx (N, C, H, W), dweight (C, F, kh, kw), dbias (F,))``.
    """
    C, F, kh, kw = cache.weight.shape
    N, _, H, W = cache.x_shape
    dout = np.asarray(dout)
    dcols = im2col(_pad(dout, cache.padding), (kh, kw), cache.stride)  # (F kh kw, N H W)
    dweight = (_to_rows(cache.x) @ dcols.T).reshape(C, F, kh, kw)
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
