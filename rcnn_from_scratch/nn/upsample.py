"""Nearest-neighbour resizing of feature maps: the FPN's top-down path.

``F.interpolate(x, size=(Ho, Wo), mode="nearest")`` in PyTorch (not ``"nearest-exact"``) gives
output pixel ``(y, x)`` the value of input pixel ``(src_h(y), src_w(x))``, each axis on its own, with
ATen's ``nearest_idx`` rule::

    src(dst) = dst                                        if out == in
             = dst >> 1                                   if out == 2 in
             = min(floor(dst * float32(in / out)), in - 1)   otherwise, in float32

The scale ``in / out`` is a float32 division and the product a float32 product, as in ATen, so the
rare index where float32 rounding lands on the other side of an integer is the same here.

The FPN only ever doubles (padded image sizes are multiples of 32), so that case is a broadcast
copy forward, ``x[:, :, :, None, :, None]`` spread over ``(N, C, H, 2, W, 2)``, and a reshape-sum
backward. The general case gathers with the two index arrays; its backward adds each output row
(then column) into its source with ``np.add.reduceat`` over the runs of equal indices (the indices
never decrease), one axis at a time, never a loop over pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .module import Module

__all__ = [
    "nearest_source_index",
    "interpolate_nearest_forward",
    "interpolate_nearest_backward",
    "interpolate_nearest",
    "interpolate_nearest_reference",
    "UpsampleNearest",
]


def nearest_source_index(in_size: int, out_size: int) -> np.ndarray:
    """ATen's ``nearest_idx`` for one axis: ``(out_size,)`` int64 source indices, non-decreasing."""
    dst = np.arange(out_size, dtype=np.int64)
    if out_size == in_size:
        return dst
    if out_size == 2 * in_size:
        return dst >> 1
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(dst.astype(np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


class UpsampleCache(NamedTuple):
    """The input's shape and the source index of every output row and column."""

    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    rows: np.ndarray  # (Ho,) int64 input row of each output row
    cols: np.ndarray  # (Wo,) int64 input column of each output column


def _check(x, size) -> tuple[np.ndarray, int, int]:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W); got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be float32 or float64; got dtype {x.dtype}")
    try:
        Ho, Wo = (int(s) for s in size)
        ok = all(int(s) == s for s in size)
    except (TypeError, ValueError):
        ok = False
    if not ok or Ho < 1 or Wo < 1:
        raise ValueError(f"size must be a pair of ints (Ho, Wo) >= 1; got {size!r}")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"x must have H, W >= 1 to be resized; got {x.shape}")
    return x, Ho, Wo


def interpolate_nearest_forward(x, size) -> tuple[np.ndarray, UpsampleCache]:
    """Nearest-neighbour resize to ``size``, PyTorch's ``F.interpolate(mode="nearest")``.

    Args:
        x: ``(N, C, H, W)`` float32 or float64.
        size: ``(Ho, Wo)``, the output's height and width (any sizes >= 1, up or down).

    Returns:
        ``(out, cache)``: ``out`` ``(N, C, Ho, Wo)`` contiguous, in ``x``'s dtype, with
        ``out[n, c, y, x] = x[n, c, rows[y], cols[x]]`` (:func:`nearest_source_index`).
    """
    x, Ho, Wo = _check(x, size)
    N, C, H, W = x.shape
    rows, cols = nearest_source_index(H, Ho), nearest_source_index(W, Wo)
    cache = UpsampleCache(x.shape, rows, cols)
    if (Ho, Wo) == (2 * H, 2 * W):  # the FPN's case: one broadcast copy
        out = np.empty((N, C, H, 2, W, 2), x.dtype)
        out[...] = x[:, :, :, None, :, None]
        return out.reshape(N, C, Ho, Wo), cache
    out = x if Ho == H else x[:, :, rows]  # (N, C, Ho, W)
    out = out if Wo == W else out[:, :, :, cols]  # (N, C, Ho, Wo)
    return np.ascontiguousarray(out), cache


def _sum_into_sources(d: np.ndarray, index: np.ndarray, in_size: int, axis: int) -> np.ndarray:
    """Adjoint of ``take(·, index, axis)`` for a non-decreasing ``index``: entries of ``d`` along
    ``axis`` that share a source are summed into it; sources nobody reads get zero."""
    if len(index) == in_size and np.array_equal(index, np.arange(in_size)):
        return d
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])  # first entry of each run
    shape = list(d.shape)
    shape[axis] = in_size
    out = np.zeros(shape, d.dtype)
    target = [slice(None)] * d.ndim
    target[axis] = index[starts]
    out[tuple(target)] = np.add.reduceat(d, starts, axis=axis)
    return out


def interpolate_nearest_backward(dout, cache: UpsampleCache) -> np.ndarray:
    """Gradient of :func:`interpolate_nearest_forward`: each input pixel gets the sum of the output
    gradients of the pixels that copied it (zero if none did, when shrinking).

    Args:
        dout: ``(N, C, Ho, Wo)``, the gradient of the output.

    Returns:
        ``dx`` ``(N, C, H, W)`` in ``dout``'s dtype.
    """
    dout = np.asarray(dout)
    N, C, H, W = cache.x_shape
    Ho, Wo = len(cache.rows), len(cache.cols)
    if dout.shape != (N, C, Ho, Wo):
        raise ValueError(f"dout must have shape {(N, C, Ho, Wo)}; got {dout.shape}")
    if (Ho, Wo) == (2 * H, 2 * W):
        return dout.reshape(N, C, H, 2, W, 2).sum(axis=(3, 5))
    d = _sum_into_sources(dout, cache.cols, W, axis=3)  # (N, C, Ho, W)
    return np.ascontiguousarray(_sum_into_sources(d, cache.rows, H, axis=2))  # (N, C, H, W)


def interpolate_nearest(x, size) -> np.ndarray:
    """``F.interpolate(x, size=size, mode="nearest")``: ``(N, C, H, W)`` -> ``(N, C, Ho, Wo)``
    (see :func:`interpolate_nearest_forward`)."""
    return interpolate_nearest_forward(x, size)[0]


def interpolate_nearest_reference(x, size) -> np.ndarray:
    """The definition, one output pixel at a time, with the index rule in plain Python floats
    rounded to float32 at each step: the slow teaching path of the tests."""
    x, Ho, Wo = _check(x, size)
    H, W = x.shape[2:]

    def source(dst: int, n_in: int, n_out: int) -> int:
        if n_out == n_in:
            return dst
        if n_out == 2 * n_in:
            return dst // 2
        scale = np.float32(np.float32(n_in) / np.float32(n_out))
        return min(int(np.floor(np.float32(np.float32(dst) * scale))), n_in - 1)

    out = np.empty(x.shape[:2] + (Ho, Wo), x.dtype)
    for y in range(Ho):
        for x_ in range(Wo):
            out[:, :, y, x_] = x[:, :, source(y, H, Ho), source(x_, W, Wo)]
    return out


class UpsampleNearest(Module):
    """Nearest resize to the size of a given map: ``UpsampleNearest()(x, size)``; no parameters.

    ``backward(dout)`` returns the gradient of ``x``.
    """

    def _forward(self, x, size):
        return interpolate_nearest_forward(x, size)

    def _backward(self, dout, cache):
        return interpolate_nearest_backward(dout, cache)
