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
    start = _round_half_away(rois[:, 1:3].astype(np.float64) * spatial_scale)  # (K, 2) x, y
    end = _round_half_away(rois[:, 3:5].astype(np.float64) * spatial_scale)
    size = np.maximum(end - start + 1, 1)  # (K, 2) width, height, both end cells counted

    def edges(n, length, origin, limit):
        b = length[:, None] / n  # (K, 1) bin size
        i = np.arange(n)[None, :]
        lo = np.clip(np.floor(i * b) + origin[:, None], 0, limit)
        hi = np.clip(np.ceil((i + 1) * b) + origin[:, None], 0, limit)
        return lo.astype(np.int64), hi.astype(np.int64)

    y0, y1 = edges(ph_n, size[:, 1], start[:, 1], height)
    x0, x1 = edges(pw_n, size[:, 0], start[:, 0], width)
    return y0, y1, x0, x1


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
    x = as_feature_map(input)
    N, C, H, W = x.shape
    rois = as_rois(boxes, num_images=N)
    P = as_size(output_size, "output_size")
    spatial_scale = check_positive_finite(spatial_scale, "spatial_scale")
    K = len(rois)
    check_allocation(
        float(K) * C * P[0] * P[1], 2 * x.dtype.itemsize + 16,
        f"RoI pooling's output and argmax ({K}, {C}, {P[0]}, {P[1]}) (output_size {P})",
    )  # fmt: skip
    y0, y1, x0, x1 = roi_pool_bins(rois, spatial_scale, P, H, W)
    if K == 0 or (y1 - y0).max() == 0 or (x1 - x0).max() == 0:  # no RoI, or every bin empty
        out = np.zeros((K, C) + P, dtype=x.dtype)
        return out, RoIPoolCache(np.full((K, C) + P, -1, np.int64), x.shape, x.dtype)
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # (N, H, W, C): gathers read whole C rows
    out, argmax = _window_max(xh, rois[:, 0].astype(np.int64), y0, y1, x0, x1)
    return out, RoIPoolCache(argmax, x.shape, x.dtype)


def _window_max(xh, n, y0, y1, x0, x1):
    """Max and flat argmax of every bin of every RoI, ``(K, C, P_h, P_w)`` each.

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
    hb = np.broadcast_to((y1 - y0)[:, :, None], (K, Ph, Pw)).reshape(-1)  # bin heights, flat
    wb = np.broadcast_to((x1 - x0)[:, None, :], (K, Ph, Pw)).reshape(-1)  # and widths
    h_max, w_max = int(hb.max()), int(wb.max())
    empty = (hb == 0) | (wb == 0)  # no maximum, no gradient
    size = np.where(empty, 0, (wb - 1) * h_max + hb - 1)  # every bin's window size s, as an index
    it = np.int32 if N * C * H * W < 2**31 else np.int64  # flat indices into the input
    # where each cell sits in the (N, C, H, W) input: the argmax of its 1 x 1 window
    cell = np.arange(N * C * H * W, dtype=it).reshape(N, C, H, W).transpose(0, 2, 3, 1).copy()
    # every bin's corner (its top-left cell) in the (N, H, W) map
    corner = ((n.astype(it)[:, None, None] * H + y0[:, :, None]) * W + x0[:, None, :]).reshape(-1)
    sizes = h_max * w_max
    slots = int(
        np.clip(_TABLE_BYTES // (xh.size * (xh.itemsize + np.dtype(it).itemsize)), 1, sizes)
    )
    tab_val = np.empty((slots,) + xh.shape, xh.dtype)  # size s sits in slot s % slots
    tab_code = np.empty((slots,) + xh.shape, it)
    val = np.empty((K * Ph * Pw, C), xh.dtype)
    flat = np.empty((K * Ph * Pw, C), it)
    # Running maxima by arithmetic, not masked copies (several times faster in NumPy): the value
    # by np.maximum, the position by code = old + better * (new - old).
    col_val, col_code = xh, cell  # windows 1 x w, for w = 1, 2, ...
    for w in range(1, w_max + 1):
        if w > 1:
            new, new_code = xh[:, :, w - 1 :], cell[:, :, w - 1 :]
            better = new > col_val[:, :, :-1]
            col_val = np.maximum(col_val[:, :, :-1], new)
            col_code = col_code[:, :, :-1] + better * (new_code - col_code[:, :, :-1])
        for h in range(1, h_max + 1):  # windows h x w from (h - 1) x w, at rows that still fit
            s = (w - 1) * h_max + h - 1
            win_val, win_code = (
                tab_val[s % slots, :, : H - h + 1, : W - w + 1],
                tab_code[s % slots, :, : H - h + 1, : W - w + 1],
            )
            if h == 1:
                win_val[...], win_code[...] = col_val, col_code
            else:
                prev_val = tab_val[(s - 1) % slots, :, : H - h + 1, : W - w + 1]
                prev_code = tab_code[(s - 1) % slots, :, : H - h + 1, : W - w + 1]
                below, below_code = col_val[:, h - 1 :], col_code[:, h - 1 :]
                better = below > prev_val
                np.maximum(prev_val, below, out=win_val)
                step = (below_code - prev_code) * better  # (with one slot, prev is win itself)
                np.add(prev_code, step, out=win_code)
            if s % slots == slots - 1 or s == sizes - 1:  # the table is full: bins read from it
                lo = s - s % slots
                if slots == sizes:  # it holds every size: gather straight into the outputs
                    at = size * (N * H * W) + corner
                    at[empty] = 0
                    np.take(tab_val.reshape(-1, C), at, axis=0, out=val)
                    np.take(tab_code.reshape(-1, C), at, axis=0, out=flat)
                else:
                    bins = np.flatnonzero(~empty & (size >= lo) & (size <= s))
                    at = (size[bins] - lo) * (N * H * W) + corner[bins]
                    val[bins] = np.take(tab_val.reshape(-1, C), at, axis=0)
                    flat[bins] = np.take(tab_code.reshape(-1, C), at, axis=0)
    val[empty], flat[empty] = 0, -1
    shape = (K, Ph, Pw, C)  # channels last; callers see (K, C, Ph, Pw) views
    return val.reshape(shape).transpose(0, 3, 1, 2), flat.reshape(shape).transpose(0, 3, 1, 2)


def roi_pool_backward(dout, cache: RoIPoolCache) -> np.ndarray:
    """Each output's gradient goes to its maximum; empty bins send nothing. ``(N, C, H, W)``."""
    used = cache.argmax >= 0
    grad = np.bincount(
        cache.argmax[used], weights=np.asarray(dout, np.float64)[used],
        minlength=int(np.prod(cache.input_shape)),
    )  # fmt: skip
    return grad.reshape(cache.input_shape).astype(cache.dtype)


def roi_pool(input, boxes, output_size, spatial_scale: float = 1.0) -> np.ndarray:
    """torchvision's ``roi_pool``: ``(N, C, H, W)`` features, ``(K, 5)`` RoIs -> ``(K, C, P_h, P_w)``."""
    return roi_pool_forward(input, boxes, output_size, spatial_scale)[0]


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
