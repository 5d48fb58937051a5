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

from ..conventions import as_feature_map, as_rois, as_size
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


class RoIPoolCache(NamedTuple):
    """What the backward needs: where each output's maximum came from."""

    argmax: np.ndarray  # (K, C, P_h, P_w) flat index into the (N, C, H, W) input, -1 for empty bins
    input_shape: tuple[int, int, int, int]
    dtype: np.dtype


def roi_pool_forward(input, boxes, output_size, spatial_scale: float = 1.0):
    """RoI max pooling; see the module docstring for the exact rule.

    Args:
        input: ``(N, C, H, W)`` feature map.
        boxes: ``(K, 5)`` RoIs ``[n, x1, y1, x2, y2]`` in image pixels, or a list of ``(L_i, 4)``.
        output_size: ``P`` or ``(P_h, P_w)``.
        spatial_scale: feature cells per image pixel (1 / stride).

    Returns:
        ``(out (K, C, P_h, P_w), cache)``.
    """
    x = as_feature_map(input)
    N, C, H, W = x.shape
    rois = as_rois(boxes, num_images=N)
    P = as_size(output_size, "output_size")
    K = len(rois)
    out = np.zeros((K, C) + P, dtype=x.dtype)
    argmax = np.full((K, C) + P, -1, dtype=np.int64)
    if K == 0:
        return out, RoIPoolCache(argmax, x.shape, x.dtype)
    y0, y1, x0, x1 = roi_pool_bins(rois, spatial_scale, P, H, W)
    for k in range(K):  # one RoI per step: a separable max, columns first, then rows
        out[k], argmax[k] = _pool_one(x, int(rois[k, 0]), y0[k], y1[k], x0[k], x1[k])
    return out, RoIPoolCache(argmax, x.shape, x.dtype)


def _pool_one(x, n, y0, y1, x0, x1):
    """Max and flat argmax of every bin of one RoI: ``(C, P_h, P_w)`` each.

    A separable running maximum: stage 1 steps through the column offsets inside the bins (all
    column bins at once), stage 2 through the row offsets (all row bins at once). Strict ``>`` keeps
    the first maximum, columns then rows, which is torchvision's row-major tie rule.
    """
    N, C, H, W = x.shape
    Ph, Pw = len(y0), len(x0)
    r0, r1 = int(y0.min()), int(y1.max())
    bw, bh = int((x1 - x0).max(initial=0)), int((y1 - y0).max(initial=0))
    if r1 <= r0 or bw <= 0 or bh <= 0:
        return np.zeros((C, Ph, Pw), x.dtype), np.full((C, Ph, Pw), -1, np.int64)
    rows = x[n, :, r0:r1]  # (C, h, W)
    col_val = np.full((C, r1 - r0, Pw), -np.inf, x.dtype)
    col_arg = np.zeros((C, r1 - r0, Pw), np.int64)
    for j in range(bw):  # stage 1: best column of each column bin, for every row
        inside = x0 + j < x1  # (Pw,)
        view = rows[:, :, np.minimum(x0 + j, W - 1)]  # (C, h, Pw)
        better = (view > col_val) & inside
        np.copyto(col_val, view, where=better)
        np.copyto(col_arg, x0 + j, where=better)
    val = np.full((C, Ph, Pw), -np.inf, x.dtype)
    arg = np.zeros((C, Ph, Pw), np.int64)
    for i in range(bh):  # stage 2: best row of each row bin
        inside = (y0 + i < y1)[:, None]  # (Ph, 1)
        r = np.minimum(y0 + i, r1 - 1) - r0
        view = col_val[:, r]  # (C, Ph, Pw)
        better = (view > val) & inside
        np.copyto(val, view, where=better)
        np.copyto(
            arg,
            ((n * C + np.arange(C)[:, None, None]) * H + (r + r0)[:, None]) * W + col_arg[:, r],
            where=better,
        )
    empty = ~np.isfinite(val)
    return np.where(empty, 0, val).astype(x.dtype), np.where(empty, -1, arg)


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
    x = np.asarray(input, dtype=np.float64)
    N, C, H, W = x.shape
    rois = as_rois(boxes, num_images=N)
    ph_n, pw_n = as_size(output_size, "output_size")
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
        self.output_size, self.spatial_scale = output_size, float(spatial_scale)

    def _forward(self, input, rois):
        return roi_pool_forward(input, rois, self.output_size, self.spatial_scale)

    def _backward(self, dout, cache):
        return roi_pool_backward(dout, cache)

    def __repr__(self) -> str:
        return f"RoIPool(output_size={self.output_size}, spatial_scale={self.spatial_scale})"
