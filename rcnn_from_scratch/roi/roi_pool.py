"""RoI pooling (Fast R-CNN): a box of any size becomes a fixed ``P x P`` grid by max-pooling.

Torchvision's semantics, step by step (see ``roi_pool_reference``, which reads like this list):

1. the box is scaled to the feature map and **rounded** (half away from zero): ``round(x * scale)``;
2. its size counts both end cells (``end - start + 1``, at least 1);
3. bin ``ph`` covers rows ``floor(ph * h / P)`` to ``ceil((ph + 1) * h / P)`` from the start, clipped
   to the map: neighbouring bins may share a row, and rounding may move the whole grid;
4. each output is the maximum of its bin (the first maximum, row-major, on ties), 0 for an empty bin;
5. the backward sends each output's gradient to that one maximal input.

Step 1 is the quantisation that RoIAlign removes (see ``worked_example.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..conventions import (
    as_feature_map,
    as_rois,
    as_size,
    check_allocation,
    check_positive_finite,
)
from ..nn.module import Module

__all__ = [
    "roi_pool",
    "roi_pool_forward",
    "roi_pool_backward",
    "roi_pool_reference",
    "RoIPool",
    "roi_pool_bins",
]


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's ``round``: halves go away from zero (NumPy's ``round`` goes to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def roi_pool_bins(rois: np.ndarray, spatial_scale: float, output_size, height: int, width: int):
    """Bin edges of every RoI, in feature-map cells.

    Args:
        rois: ``(K, 5)`` RoIs (image pixels).

    Returns:
        ``(y0, y1, x0, x1)``: int arrays ``(K, P_h)`` / ``(K, P_w)``; bin ``(ph, pw)`` of RoI ``k``
        covers rows ``y0[k, ph] .. y1[k, ph] - 1`` and columns ``x0[k, pw] .. x1[k, pw] - 1``.
    """
    ph_n, pw_n = output_size
    spatial_scale = check_positive_finite(spatial_scale, "spatial_scale")
    corners = _round_half_away(rois[:, 1:5].astype(np.float64) * spatial_scale)  # (K, 4)
    start = corners[:, :2, None]  # (K, 2, 1): x, then y
    size = np.maximum(corners[:, 2:, None] - start + 1, 1)  # width, height: both end cells count
    # both axes at once: axis 0 is x (P_w bins, up to width), axis 1 is y (P_h bins, up to height)
    n, limit = np.array([[pw_n], [ph_n]]), np.array([[width], [height]])
    b = size / n  # (K, 2, 1) bin size
    i = np.arange(max(ph_n, pw_n))
    # clipped to [0, limit] (np.minimum / np.maximum: np.clip costs more on arrays this small)
    lo = np.minimum(np.maximum(np.floor(i * b) + start, 0), limit).astype(np.int64)
    hi = np.minimum(np.maximum(np.ceil((i + 1) * b) + start, 0), limit).astype(np.int64)
    return lo[:, 1, :ph_n], hi[:, 1, :ph_n], lo[:, 0, :pw_n], hi[:, 0, :pw_n]


_TABLE_BYTES = 2**20  # the window-maximum table of _window_max, at most: about a core's L2 cache


class RoIPoolCache(NamedTuple):
    """What the backward needs: where each output's maximum came from."""

    argmax: np.ndarray  # (K, C, P_h, P_w) int32 (int64 for huge maps) flat index into the
    # (N, C, H, W) input, -1 for empty bins
    input_shape: tuple[int, int, int, int]
    dtype: np.dtype


def roi_pool_forward(input, boxes, output_size, spatial_scale: float = 1.0):
    """RoI max pooling; see the module docstring for the exact rule.

    Args:
        input: ``(N, C, H, W)`` feature map.
        boxes: ``(K, 5)`` RoIs ``[n, x1, y1, x2, y2]`` in image pixels, or a list of ``(L_i, 4)``.
        output_size: ``P`` or ``(P_h, P_w)``.
        spatial_scale: feature cells per image pixel (1 / stride), a finite number > 0 (NaN or inf
            is a ``ValueError``, not zeros).

    Returns:
        ``(out (K, C, P_h, P_w), cache)``.

    Raises:
        ValueError: bad arguments, or an output (with its argmax) larger than
            ``conventions.MAX_ALLOCATION_BYTES`` (an ``output_size`` of 10**5, say).
    """
    return _roi_pool(input, boxes, output_size, spatial_scale, with_argmax=True)


def _roi_pool(input, boxes, output_size, spatial_scale, with_argmax: bool):
    """The forward; without the argmax (``roi_pool``: no backward follows) the cache is ``None``."""
    x = as_feature_map(input)
    N, C, H, W = x.shape
    rois = as_rois(boxes, num_images=N)
    P = as_size(output_size, "output_size")
    spatial_scale = check_positive_finite(spatial_scale, "spatial_scale")
    K = len(rois)
    what = "output and argmax" if with_argmax else "output"
    check_allocation(
        float(K) * C * P[0] * P[1], 2 * x.dtype.itemsize + 16 if with_argmax else x.dtype.itemsize,
        f"RoI pooling's {what} ({K}, {C}, {P[0]}, {P[1]}) (output_size {P})",
    )  # fmt: skip
    y0, y1, x0, x1 = roi_pool_bins(rois, spatial_scale, P, H, W)
    if K == 0 or (y1 - y0).max() == 0 or (x1 - x0).max() == 0:  # no RoI, or every bin empty
        out = np.zeros((K, C) + P, dtype=x.dtype)
        argmax = np.full((K, C) + P, -1, np.int64) if with_argmax else None
    else:
        xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # (N, H, W, C): gathers read C rows
        out, argmax = _window_max(xh, rois[:, 0].astype(np.intp), y0, y1, x0, x1, with_argmax)
    return out, (RoIPoolCache(argmax, x.shape, x.dtype) if with_argmax else None)


def _window_max(xh, n, y0, y1, x0, x1, with_argmax: bool = True):
    """Max and flat argmax (``None`` unless ``with_argmax``) of every bin, ``(K, C, P_h, P_w)`` each.

    A bin is a window of the map, at most ``h_max x w_max`` cells (a few cells, whatever the number
    of RoIs). So the maximum over *every* window of each size is computed once for the whole map,
    growing the window one column, then one row at a time (``m[y, x] = max(m[y, x], x[y, x + w - 1])``),
    into a table ``T[size, n, y, x, c]``, and each bin reads its value (and where it came from) from
    the table with one gather. Strict ``>`` keeps the earlier cell, columns then rows: torchvision's
    row-major tie rule. A small map's table holds every size at once (one gather in all); a large
    map's holds as many as ``_TABLE_BYTES`` allows, reused in turn (a gather each time it is full).

    Args:
        xh: ``(N, H, W, C)`` channels-last feature map.
        n: ``(K,)`` image of each RoI; ``y0, y1`` ``(K, P_h)`` and ``x0, x1`` ``(K, P_w)`` bin edges.
    """
    N, H, W, C = xh.shape
    K, Ph = y0.shape
    Pw = x0.shape[1]
    NHW = N * H * W
    bh, bw = y1 - y0, x1 - x0  # (K, P_h) bin heights, (K, P_w) widths
    h_max, w_max = int(bh.max()), int(bw.max())
    sizes = h_max * w_max
    empty = ((bh == 0)[:, :, None] | (bw == 0)[:, None, :]).reshape(-1)  # no maximum, no gradient
    # every bin's window size s, as an index (empty bins: `sizes`, one past the last), and its
    # corner (its top-left cell) in the (N, H, W) map, flat over (K, P_h, P_w)
    size = ((bw[:, None, :] - 1) * h_max + bh[:, :, None] - 1).reshape(-1)
    size[empty] = sizes
    corner = ((n[:, None, None] * H + y0[:, :, None]) * W + x0[:, None, :]).reshape(-1)
    it = np.int32 if xh.size < 2**31 else np.int64  # flat indices into the input
    cell = None  # where each cell sits in the (N, C, H, W) input: the argmax of its 1 x 1 window
    if with_argmax:
        cell = np.arange(xh.size, dtype=it).reshape(N, C, H, W).transpose(0, 2, 3, 1).copy()
    per_size = xh.size * (xh.itemsize + (np.dtype(it).itemsize if with_argmax else 0))
    slots = min(max(_TABLE_BYTES // per_size, 1), sizes)
    # the table, flat over (slot, n, y, x) with C values a row; size s sits in slot s % slots.
    # When every size fits, a last row of zeros (code -1) serves the empty bins.
    rows = slots * NHW + (slots == sizes)
    tab_val = np.empty((rows, C), xh.dtype)
    tab_code = np.empty((rows, C), it) if with_argmax else None
    if slots == sizes:
        tab_val[-1] = 0
        if with_argmax:
            tab_code[-1] = -1
    else:  # bins sorted by size: the bins of sizes lo .. s are one slice of `order`
        order = np.argsort(size.astype(np.int16 if sizes < 2**15 else np.int64), kind="stable")
        first = np.concatenate([[0], np.cumsum(np.bincount(size, minlength=sizes + 1))])
        val = np.empty((K * Ph * Pw, C), xh.dtype)
        flat = np.empty((K * Ph * Pw, C), it) if with_argmax else None

    grid_val = tab_val[: slots * NHW].reshape(slots, N, H, W, C)
    grid_code = tab_code[: slots * NHW].reshape(slots, N, H, W, C) if with_argmax else None

    def window(grid, s, h, w):  # the (N, H - h + 1, W - w + 1, C) windows of size s
        return None if grid is None else grid[s % slots, :, : H - h + 1, : W - w + 1]

    col_val, col_code = xh, cell  # windows 1 x w, for w = 1, 2, ...
    for w in range(1, w_max + 1):
        if w > 1:  # one column more, at columns that still fit
            col_val, col_code = _running_max(
                col_val[:, :, :-1], col_code[:, :, :-1] if with_argmax else None,
                xh[:, :, w - 1 :], cell[:, :, w - 1 :] if with_argmax else None,
            )  # fmt: skip
        for h in range(1, h_max + 1):  # windows h x w from (h - 1) x w, at rows that still fit
            s = (w - 1) * h_max + h - 1
            win_val, win_code = window(grid_val, s, h, w), window(grid_code, s, h, w)
            if h == 1:
                win_val[...] = col_val
                if with_argmax:
                    win_code[...] = col_code
            else:  # (with one slot, the previous size's windows are these very arrays)
                _running_max(
                    window(grid_val, s - 1, h, w), window(grid_code, s - 1, h, w),
                    col_val[:, h - 1 :], col_code[:, h - 1 :] if with_argmax else None,
                    win_val, win_code,
                )  # fmt: skip
            if slots < sizes and (s % slots == slots - 1 or s == sizes - 1):  # the table is full:
                lo = s - s % slots  # the bins of sizes lo .. s read from it
                bins = order[first[lo] : first[s + 1]]
                at = (size[bins] - lo) * NHW + corner[bins]
                val[bins] = np.take(tab_val, at, axis=0)
                if with_argmax:
                    flat[bins] = np.take(tab_code, at, axis=0)
    if slots == sizes:  # one gather for all bins, the empty ones from the zero row
        at = np.where(empty, sizes * NHW, size * NHW + corner)
        val = np.take(tab_val, at, axis=0)
        flat = np.take(tab_code, at, axis=0) if with_argmax else None
    else:
        bins = order[first[sizes] :]  # the empty bins
        val[bins] = 0
        if with_argmax:
            flat[bins] = -1
    shape = (K, Ph, Pw, C)  # channels last; callers see (K, C, Ph, Pw) views
    out = val.reshape(shape).transpose(0, 3, 1, 2)
    return out, (flat.reshape(shape).transpose(0, 3, 1, 2) if with_argmax else None)


def _running_max(val, code, new, new_code, out_val=None, out_code=None):
    """``max(val, new)`` and, unless ``code`` is None, where it sits: ``new_code`` only where
    ``new`` is strictly greater (ties keep the earlier cell). By arithmetic, not masked copies
    (several times faster in NumPy): ``code + better * (new_code - code)``."""
    if code is not None:  # before the maximum: out_val may be val itself
        out_code = np.add(code, (new_code - code) * (new > val), out=out_code)
    return np.maximum(val, new, out=out_val), out_code


def roi_pool_backward(dout, cache: RoIPoolCache) -> np.ndarray:
    """Each output's gradient goes to its maximum; empty bins send nothing. ``(N, C, H, W)``."""
    argmax, dout = cache.argmax, np.asarray(dout)
    if argmax.transpose(0, 2, 3, 1).flags.c_contiguous:  # the forward's channels-last memory:
        argmax, dout = argmax.transpose(0, 2, 3, 1), dout.transpose(0, 2, 3, 1)  # read it in order
    size = int(np.prod(cache.input_shape))
    # empty bins (-1) go to an extra first bin, dropped: no masked copies of the two arrays
    grad = np.bincount(
        argmax.reshape(-1) + 1, weights=np.ascontiguousarray(dout, np.float64).reshape(-1),
        minlength=size + 1,
    )[1:]  # fmt: skip
    return grad.reshape(cache.input_shape).astype(cache.dtype)


def roi_pool(input, boxes, output_size, spatial_scale: float = 1.0) -> np.ndarray:
    """torchvision's ``roi_pool``: ``(N, C, H, W)`` features, ``(K, 5)`` RoIs -> ``(K, C, P_h, P_w)``.

    The values of ``roi_pool_forward`` without its argmax (no backward follows), so the window
    table holds only values (0.3-0.7x the time of ``roi_pool_forward`` in ``bench_roi.py``).
    """
    return _roi_pool(input, boxes, output_size, spatial_scale, with_argmax=False)[0]


def roi_pool_reference(input, boxes, output_size, spatial_scale: float = 1.0) -> np.ndarray:
    """Loops over RoIs, bins and cells, straight from the definition: the slow teaching path."""
    x = as_feature_map(input).astype(np.float64)
    N, C, H, W = x.shape
    rois = as_rois(boxes, num_images=N)
    ph_n, pw_n = as_size(output_size, "output_size")
    spatial_scale = check_positive_finite(spatial_scale, "spatial_scale")
    out = np.zeros((len(rois), C, ph_n, pw_n))
    for k, (n, x1, y1, x2, y2) in enumerate(rois.astype(np.float64)):
        start_w, start_h = _round_half_away(np.array([x1, y1]) * spatial_scale)
        end_w, end_h = _round_half_away(np.array([x2, y2]) * spatial_scale)
        roi_w, roi_h = max(end_w - start_w + 1, 1), max(end_h - start_h + 1, 1)
        for ph in range(ph_n):
            hs = int(min(max(np.floor(ph * roi_h / ph_n) + start_h, 0), H))
            he = int(min(max(np.ceil((ph + 1) * roi_h / ph_n) + start_h, 0), H))
            for pw in range(pw_n):
                ws = int(min(max(np.floor(pw * roi_w / pw_n) + start_w, 0), W))
                we = int(min(max(np.ceil((pw + 1) * roi_w / pw_n) + start_w, 0), W))
                if he > hs and we > ws:
                    out[k, :, ph, pw] = x[int(n), :, hs:he, ws:we].max(axis=(1, 2))
    return out


class RoIPool(Module):
    """``RoIPool(output_size, spatial_scale)``: ``forward(features, rois)``; ``backward`` returns the
    gradient for the features (RoIs are constants)."""

    def __init__(self, output_size, spatial_scale: float):
        as_size(output_size, "output_size")
        self.output_size = output_size
        self.spatial_scale = check_positive_finite(spatial_scale, "spatial_scale")

    def _forward(self, input, rois):
        return roi_pool_forward(input, rois, self.output_size, self.spatial_scale)

    def _backward(self, dout, cache):
        return roi_pool_backward(dout, cache)

    def __repr__(self) -> str:
        return f"RoIPool(output_size={self.output_size}, spatial_scale={self.spatial_scale})"
