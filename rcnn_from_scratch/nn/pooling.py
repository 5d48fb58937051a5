"""``MaxPool2d``: the largest value of each ``k x k`` window, with PyTorch's semantics
(``kernel_size``, ``stride`` defaulting to ``kernel_size``, ``padding`` read as ``-inf``, no ceil mode).

Forward is a running maximum over the ``k * k`` kernel offsets: each step takes ``np.maximum`` of
one strided view of the input and the best so far, so no window is ever copied. The backward walks
the offsets in the same order and routes each output gradient to the first input equal to its window's
maximum (ties go to the first maximum in row-major window order, as in PyTorch), with ``k * k``
strided adds (the loop of ``conv.col2im``), never a loop over pixels. Finding the winner in the
backward rather than recording it in the forward keeps the forward, which inference also runs, at
one ``np.maximum`` per offset.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .module import Module

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "max_pool2d_reference", "MaxPool2d"]


class MaxPoolCache(NamedTuple):
    """References (not copies) to the input and output: neither may change in place before backward."""

    xp: np.ndarray  # (N, C, H + 2p, W + 2p) the padded input (padding -inf)
    out: np.ndarray  # (N, C, Ho, Wo) the window maxima
    kernel_size: int
    stride: int
    padding: int


def _check(kernel_size, stride, padding) -> tuple[int, int, int]:
    k, s, p = int(kernel_size), int(kernel_size if stride is None else stride), int(padding)
    if k < 1 or s < 1:
        raise ValueError(f"kernel_size and stride must be >= 1; got {kernel_size}, {stride}")
    if not 0 <= p <= k // 2:
        raise ValueError(f"padding must lie in [0, kernel_size // 2] = [0, {k // 2}]; got {p}")
    return k, s, p


def _out_size(x: np.ndarray, k: int, s: int, p: int) -> tuple[int, int]:
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W); got {x.shape}")
    Ho, Wo = (x.shape[2] + 2 * p - k) // s + 1, (x.shape[3] + 2 * p - k) // s + 1
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"x of size {x.shape[2]}x{x.shape[3]} is smaller than the {k}x{k} window")
    return Ho, Wo


def max_pool2d_forward(x, kernel_size: int, stride: int | None = None, padding: int = 0):
    """Max over ``k x k`` windows, ``stride`` apart.

    Args:
        x: ``(N, C, H, W)`` float.
        kernel_size, stride, padding: ints; ``stride`` defaults to ``kernel_size``; padding is at
            most ``kernel_size // 2`` (PyTorch's rule) and never wins.

    Returns:
        ``(out (N, C, Ho, Wo), cache)``, ``Ho = (H + 2 p - k) // s + 1`` (likewise ``Wo``).
    """
    k, s, p = _check(kernel_size, stride, padding)
    x = np.asarray(x)
    Ho, Wo = _out_size(x, k, s, p)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf) if p else x
    out = _window(xp, 0, 0, s, Ho, Wo).copy()
    for i in range(k):
        for j in range(k):
            if i or j:
                np.maximum(out, _window(xp, i, j, s, Ho, Wo), out=out)
    return out, MaxPoolCache(xp, out, k, s, p)


def _window(xp: np.ndarray, i: int, j: int, s: int, Ho: int, Wo: int) -> np.ndarray:
    """The input at kernel offset ``(i, j)`` of every window: a strided ``(N, C, Ho, Wo)`` view."""
    return xp[:, :, i : i + s * (Ho - 1) + 1 : s, j : j + s * (Wo - 1) + 1 : s]


def max_pool2d_backward(dout, cache: MaxPoolCache) -> np.ndarray:
    """Each output gradient goes to its window's maximum; overlapping windows add up.

    Returns:
        ``dx`` ``(N, C, H, W)`` in the dtype of ``dout``.
    """
    dout = np.asarray(dout)
    k, s, p = cache.kernel_size, cache.stride, cache.padding
    Ho, Wo = cache.out.shape[2:]
    tiled = s == k and p == 0 and Ho * k == cache.xp.shape[2] and Wo * k == cache.xp.shape[3]
    # windows that tile the input write every pixel exactly once: no need to clear it first
    dxp = (np.empty if tiled else np.zeros)(cache.xp.shape, dtype=dout.dtype)
    unclaimed = np.ones(cache.out.shape, bool)  # windows whose maximum is not yet found
    for i in range(k):  # offsets in row-major order, so the first maximum claims its window
        for j in range(k):
            if i == j == k - 1:  # the last offset holds the maximum of every window left
                hit = unclaimed
            else:
                hit = _window(cache.xp, i, j, s, Ho, Wo) == cache.out
                hit &= unclaimed
                unclaimed ^= hit
            if s >= k:  # windows do not overlap: each input pixel is written once
                np.multiply(dout, hit, out=_window(dxp, i, j, s, Ho, Wo))
            else:
                _window(dxp, i, j, s, Ho, Wo)[...] += dout * hit
    H, W = dxp.shape[2] - 2 * p, dxp.shape[3] - 2 * p
    return dxp[:, :, p : p + H, p : p + W] if p else dxp


def max_pool2d_reference(x, kernel_size: int, stride: int | None = None, padding: int = 0):
    """The definition, one window at a time: the slow teaching path of the tests."""
    k, s, p = _check(kernel_size, stride, padding)
    x = np.asarray(x)
    Ho, Wo = _out_size(x, k, s, p)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    out = np.empty(x.shape[:2] + (Ho, Wo), x.dtype)
    for y in range(Ho):
        for x_ in range(Wo):
            out[:, :, y, x_] = xp[:, :, y * s : y * s + k, x_ * s : x_ * s + k].max(axis=(2, 3))
    return out


class MaxPool2d(Module):
    """``MaxPool2d(kernel_size, stride=None, padding=0)``: no parameters; PyTorch's semantics."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        self.kernel_size, self.stride, self.padding = _check(kernel_size, stride, padding)

    def _forward(self, x):
        return max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)

    def _backward(self, dout, cache):
        return max_pool2d_backward(dout, cache)
