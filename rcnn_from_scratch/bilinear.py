"""Bilinear interpolation: a distance-weighted mean of the four neighbouring pixels.

Used by region warping (R-CNN), ``roi_align`` (Mask R-CNN) and mask pasting.

Coordinate frame: the **array-index frame**. The value ``feature[..., i, j]`` sits exactly at the point
``(y, x) = (i, j)``. A point in continuous pixel coordinates ``(u, v)`` (the package's box frame, where
pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)`` and its centre is ``(j + 0.5, i + 0.5)``) therefore
has index coordinates ``(y, x) = (v - 0.5, u - 0.5)``. ``roi_align(aligned=True)`` is exactly this shift.

For a point with ``y0 = floor(y)``, ``x0 = floor(x)``, ``ly = y - y0``, ``lx = x - x0``::

    value = (1-ly)(1-lx) f[y0, x0] + (1-ly) lx f[y0, x0+1] + ly (1-lx) f[y0+1, x0] + ly lx f[y0+1, x0+1]

Each neighbour is weighted by the area of the rectangle *opposite* it, so the weights sum to 1 and a
map ``a x + b y + c`` is reproduced exactly.

Boundary rule, torchvision ``roi_align``'s, applied per axis (so the weights still factor into a y part
and an x part):

* a point with ``y < -1`` or ``y > H`` (or ``x < -1`` or ``x > W``) reads 0 and gets no gradient;
* otherwise ``y <= 0`` is clamped to 0, and when ``floor(y) >= H - 1`` both neighbours are ``H - 1``
  (the point is clamped onto the last row); likewise for ``x``.

Resizing a whole map (``interpolate_bilinear``, torch's ``F.interpolate(mode="bilinear",
align_corners=False)``) is the same formula on a regular grid of points: output pixel ``d`` of an axis
resized from ``n`` to ``m`` samples reads the input at the index ``(d + 0.5) * n / m - 0.5``, the point
whose continuous pixel coordinate is that of the output pixel's centre.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .conventions import as_size

__all__ = [
    "linear_interpolation_weights",
    "bilinear_interpolate",
    "bilinear_interpolate_forward",
    "bilinear_interpolate_backward",
    "bilinear_interpolate_reference",
    "nearest_interpolate",
    "interpolate_bilinear",
    "interpolate_bilinear_weights",
]


class AxisWeights(NamedTuple):
    """Per-axis neighbours and weights of a set of coordinates (all arrays of the coordinates' shape)."""

    lo: np.ndarray  # int64 index of the lower neighbour
    hi: np.ndarray  # int64 index of the upper neighbour (== lo at the last row / column)
    w_lo: np.ndarray  # weight of lo; 0 for an out-of-range coordinate
    w_hi: np.ndarray  # weight of hi; 0 for an out-of-range coordinate
    valid: np.ndarray  # bool, False where the coordinate is < -1 or > size


def linear_interpolation_weights(coord, size: int, dtype=np.float64) -> AxisWeights:
    """Neighbours and weights of 1-D linear interpolation at ``coord`` on an axis of ``size`` samples.

    Args:
        coord: float array of any shape, in the array-index frame (sample ``k`` sits at ``k``).
        size: number of samples on the axis (``H`` or ``W``), at least 1.
        dtype: dtype of the returned weights.

    Returns:
        ``AxisWeights(lo, hi, w_lo, w_hi, valid)``; ``w_lo + w_hi`` is 1 where ``valid``, else 0.
        The 2-D bilinear weight of neighbour ``(a, b)`` is ``wy_a * wx_b``.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1; got {size}")
    c = np.asarray(coord, dtype=np.float64)
    valid = (c >= -1.0) & (c <= size)
    c = np.clip(c, 0.0, None)
    lo = np.floor(np.where(valid, c, 0.0)).astype(np.int64)
    at_end = lo >= size - 1
    lo = np.where(at_end, size - 1, lo)
    hi = np.where(at_end, size - 1, lo + 1)
    w_hi = np.where(at_end | ~valid, 0.0, c - lo)
    w_lo = np.where(valid, 1.0 - w_hi, 0.0)
    return AxisWeights(lo, hi, w_lo.astype(dtype), w_hi.astype(dtype), valid)


class BilinearCache(NamedTuple):
    """What the backward needs: the map's shape and dtype and the per-axis weights of the points."""

    shape: tuple[int, ...]
    dtype: np.dtype
    wy: AxisWeights
    wx: AxisWeights


def _check(feature, y, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = np.asarray(feature)
    if f.ndim not in (2, 3) or f.shape[-1] == 0 or f.shape[-2] == 0:
        raise ValueError(f"feature must have shape (C, H, W) or (H, W), non-empty; got {f.shape}")
    if not np.issubdtype(f.dtype, np.floating):
        raise ValueError(f"feature must be float32 or float64; got dtype {f.dtype}")
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    try:
        y, x = np.broadcast_arrays(y, x)
    except ValueError as err:
        raise ValueError(f"y and x must broadcast together; got {y.shape} and {x.shape}") from err
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(x))):
        raise ValueError("sample coordinates y and x must be finite")
    return f, y, x


def bilinear_interpolate_forward(feature, y, x) -> tuple[np.ndarray, BilinearCache]:
    """Sample ``feature`` at the points ``(y, x)``; also return the cache for the backward.

    Args:
        feature: ``(C, H, W)`` or ``(H, W)`` float array.
        y, x: float arrays of one (broadcastable) shape ``S``, in the array-index frame.

    Returns:
        ``(out, cache)`` with ``out`` of shape ``(C, *S)`` (or ``S`` for a 2-D map), dtype of ``feature``.
    """
    f, y, x = _check(feature, y, x)
    H, W = f.shape[-2:]
    wy = linear_interpolation_weights(y, H, f.dtype)
    wx = linear_interpolation_weights(x, W, f.dtype)
    out = (
        f[..., wy.lo, wx.lo] * (wy.w_lo * wx.w_lo)
        + f[..., wy.lo, wx.hi] * (wy.w_lo * wx.w_hi)
        + f[..., wy.hi, wx.lo] * (wy.w_hi * wx.w_lo)
        + f[..., wy.hi, wx.hi] * (wy.w_hi * wx.w_hi)
    )
    return out.astype(f.dtype, copy=False), BilinearCache(f.shape, f.dtype, wy, wx)


def bilinear_interpolate_backward(dout, cache: BilinearCache) -> np.ndarray:
    """Gradient with respect to the map: each ``dout`` is scattered to its four neighbours.

    Args:
        dout: ``(C, *S)`` (or ``S``) upstream gradient, the shape of the forward's output.
        cache: from :func:`bilinear_interpolate_forward`.

    Returns:
        ``dfeature`` of the map's shape and dtype. Points sampled twice add up; out-of-range points
        contribute nothing.
    """
    wy, wx = cache.wy, cache.wx
    H, W = cache.shape[-2:]
    C = cache.shape[0] if len(cache.shape) == 3 else 1
    S = wy.lo.shape
    dout = np.asarray(dout, dtype=cache.dtype).reshape(C, -1)  # (C, |S|)
    index = np.concatenate(
        [(a * W + b).ravel() for a in (wy.lo, wy.hi) for b in (wx.lo, wx.hi)]
    )  # (4 |S|,)
    weight = np.concatenate(
        [(u * v).ravel() for u in (wy.w_lo, wy.w_hi) for v in (wx.w_lo, wx.w_hi)]
    )  # (4 |S|,)
    n = int(np.prod(S, dtype=np.int64))
    # one bincount over channel-offset indices replaces a scatter loop (np.add.at is much slower)
    flat = (np.arange(C)[:, None] * (H * W) + index[None, :]).ravel()
    values = (np.tile(dout, (1, 4)) * weight[None, :]).ravel() if n else np.zeros(0)
    grad = np.bincount(flat, weights=values, minlength=C * H * W)
    return grad.reshape(cache.shape).astype(cache.dtype)


def bilinear_interpolate(feature, y, x) -> np.ndarray:
    """Bilinear interpolation of ``feature`` at ``(y, x)`` (see the module docstring for the frame).

    Args:
        feature: ``(C, H, W)`` or ``(H, W)`` float32/float64 map.
        y, x: coordinates of one (broadcastable) shape ``S`` in the array-index frame.

    Returns:
        ``(C, *S)``, or ``S`` for a 2-D map; zero where a point lies beyond the border band.
    """
    return bilinear_interpolate_forward(feature, y, x)[0]


def bilinear_interpolate_reference(feature, y: float, x: float):
    """One point, written straight from torchvision's CPU kernel: the slow teaching path."""
    f = np.asarray(feature, dtype=np.float64)
    H, W = f.shape[-2:]
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return np.zeros(f.shape[:-2])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= H - 1:
        y_low = y_high = H - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= W - 1:
        x_low = x_high = W - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * f[..., y_low, x_low]
        + hy * lx * f[..., y_low, x_high]
        + ly * hx * f[..., y_high, x_low]
        + ly * lx * f[..., y_high, x_high]
    )


def nearest_interpolate(feature, y, x) -> np.ndarray:
    """Nearest-neighbour sampling, the rounding that RoI pooling does, for comparison.

    Same arguments, frame and border rule as :func:`bilinear_interpolate`, but each point reads the
    single pixel nearest to it (halves round up) instead of a weighted mean of four.
    """
    f, y, x = _check(feature, y, x)
    H, W = f.shape[-2:]
    valid = (y >= -1.0) & (y <= H) & (x >= -1.0) & (x <= W)
    i = np.clip(np.floor(y + 0.5), 0, H - 1).astype(np.int64)
    j = np.clip(np.floor(x + 0.5), 0, W - 1).astype(np.int64)
    return np.where(valid, f[..., i, j], 0).astype(f.dtype, copy=False)


class ResizeWeights(NamedTuple):
    """One axis of a bilinear resize: output sample ``d`` is ``l0[d] * in[i0[d]] + l1[d] * in[i1[d]]``."""

    i0: np.ndarray  # (out,) int64 lower neighbour
    i1: np.ndarray  # (out,) int64 upper neighbour (== i0 at the last sample)
    l0: np.ndarray  # (out,) weight of i0
    l1: np.ndarray  # (out,) weight of i1


def interpolate_bilinear_weights(in_size: int, out_size: int, dtype=np.float32) -> ResizeWeights:
    """Neighbours and weights of one axis of torch's bilinear resize (``align_corners=False``).

    Args:
        in_size: samples on the input axis (at least 1).
        out_size: samples on the output axis (at least 1).
        dtype: float32 (torch's arithmetic for float32 tensors) or float64.

    Returns:
        ``ResizeWeights(i0, i1, l0, l1)``, each ``(out_size,)``.

    The rule is ATen's (``area_pixel_compute_scale`` and ``area_pixel_compute_source_index``):
    ``scale = in / out`` in the tensor's dtype, ``src = scale * (d + 0.5) - 0.5`` clamped at 0,
    ``i0 = min(floor(src), in - 1)``, ``i1 = i0 + 1`` unless ``i0`` is the last sample, ``l1 = src - i0``,
    ``l0 = 1 - l1``. For float32, torch evaluates ``src`` with one fused multiply-add (one rounding);
    the float64 product of two float32 numbers is exact, so rounding ``float64(scale) * (d + 0.5) - 0.5``
    once to float32 gives the same ``src`` (a plain float32 product would be one ulp off at times).
    """
    in_size, out_size = int(in_size), int(out_size)
    if in_size < 1 or out_size < 1:
        raise ValueError(f"in_size and out_size must be at least 1; got {in_size} and {out_size}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}")
    d = np.arange(out_size, dtype=np.float64) + 0.5
    if dtype == np.float32:
        scale = np.float64(np.float32(in_size) / np.float32(out_size))
        src = (scale * d - 0.5).astype(np.float32)
    else:
        src = (in_size / out_size) * d - 0.5
    src = np.maximum(src, dtype.type(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    l1 = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    l0 = (dtype.type(1) - l1).astype(dtype)
    return ResizeWeights(i0, i1, l0, l1)


def interpolate_bilinear(x, size) -> np.ndarray:
    """Resize maps bilinearly: torch's ``F.interpolate(x, size=size, mode="bilinear",
    align_corners=False)`` (no antialias, so shrinking also reads just two samples per axis).

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)`` float32 or float64 maps, ``H, W >= 1``.
        size: ``(Ho, Wo)`` output height and width (an int means a square).

    Returns:
        ``(N, C, Ho, Wo)`` (or ``(C, Ho, Wo)``), the dtype of ``x``. Per axis the weights are
        :func:`interpolate_bilinear_weights`; each output pixel is
        ``ly0 * (lx0 * a + lx1 * b) + ly1 * (lx0 * c + lx1 * d)`` over its four neighbours (torch's
        order: width first, then height), computed in the input's dtype. Matches torch to about one
        ulp (the order of the last additions is not reproduced bit for bit).

    Memory is ``O(output)``: the four neighbours are gathered straight into output-sized arrays,
    with no resampling matrix and no float64 copy, so a 6000 x 6000 photograph goes to 800 x 800 cheaply.
    """
    arr = np.asarray(x)
    if arr.ndim not in (3, 4) or arr.shape[-1] == 0 or arr.shape[-2] == 0:
        raise ValueError(f"x must have shape (N, C, H, W) or (C, H, W), H, W >= 1; got {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        raise ValueError(f"x must be float32 or float64; got dtype {arr.dtype}")
    Ho, Wo = as_size(size, "size")
    H, W = arr.shape[-2:]
    wy = interpolate_bilinear_weights(H, Ho, arr.dtype)
    wx = interpolate_bilinear_weights(W, Wo, arr.dtype)
    rows0, rows1 = wy.i0[:, None], wy.i1[:, None]  # (Ho, 1)
    cols0, cols1 = wx.i0[None, :], wx.i1[None, :]  # (1, Wo)

    def along_width(rows):  # (..., Ho, Wo): the two columns of each output pixel, blended
        out = arr[..., rows, cols0]
        out *= wx.l0
        right = arr[..., rows, cols1]
        right *= wx.l1
        out += right
        return out

    out = along_width(rows0)
    out *= wy.l0[:, None]
    below = along_width(rows1)
    below *= wy.l1[:, None]
    out += below
    return out
