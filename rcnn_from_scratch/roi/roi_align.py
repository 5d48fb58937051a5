"""RoIAlign (Mask R-CNN): a box becomes a ``P x P`` grid by **bilinear sampling**, never rounding.

Torchvision's semantics (``roi_align_reference`` reads like this list):

1. the box is scaled to the feature map, *not rounded*: ``x * spatial_scale``, shifted by -0.5 when
   ``aligned`` (so that pixel centres land on feature-cell centres; see ``bilinear.py``'s frame);
2. without ``aligned``, width and height are at least 1 cell;
3. bin ``(ph, pw)`` is ``1 / P`` of the box; inside it sit ``g_h x g_w`` sample points at the centres
   of a regular grid, ``g = sampling_ratio`` if positive, else ``ceil(box size / P)`` (adaptive);
4. each sample is read by :func:`~rcnn_from_scratch.bilinear.bilinear_interpolate` (same border rule);
   the bin's value is the mean of its samples;
5. the backward scatters each output's gradient through the same bilinear weights.

The fast path uses that the bilinear weight of a sample factors into a row part and a column part, and
so does the mean over a bin's grid. For RoI ``k`` the whole ``(C, P_h, P_w)`` output is two small
matrix products ``A_y @ F[n] @ A_x^T``, with ``A_y`` ``(P_h, H)`` holding, for each bin row, the mean
interpolation weights of its sample rows (at most 2 non-zeros per sample). The backward is
``A_y^T @ dout @ A_x``. Each RoI reads only the rows and columns its matrices touch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..bilinear import bilinear_interpolate, linear_interpolation_weights
from ..conventions import (
    as_feature_map,
    as_rois,
    as_size,
    check_allocation,
    check_int,
    check_positive_finite,
)
from ..nn.module import Module

__all__ = [
    "roi_align",
    "roi_align_forward",
    "roi_align_backward",
    "roi_align_reference",
    "roi_align_sample_points",
    "RoIAlign",
]


def _geometry(rois: np.ndarray, spatial_scale: float, aligned: bool):
    """Start and size of each RoI on the feature map (steps 1-2): ``(start (K, 2) x, y; size (K, 2))``."""
    offset = 0.5 if aligned else 0.0
    start = rois[:, 1:3].astype(np.float64) * spatial_scale - offset
    size = rois[:, 3:5].astype(np.float64) * spatial_scale - offset - start
    if not aligned:
        size = np.maximum(size, 1.0)
    return start, size


def _grid(size: np.ndarray, pooled: int, sampling_ratio: int) -> np.ndarray:
    """Samples per bin along one axis (step 3): ``(K,)`` ints."""
    if sampling_ratio > 0:
        return np.full(len(size), sampling_ratio, dtype=np.int64)
    return np.ceil(size / pooled).astype(np.int64)


def _check_arguments(
    rois, P, spatial_scale, sampling_ratio, aligned, feature_shape=None, itemsize=8
):
    """Entry checks shared by every RoIAlign function: ``spatial_scale`` a finite number > 0 (NaN
    would silently give zeros), ``sampling_ratio`` an integer, and every array the sizes imply
    (RoIs x bins x samples per bin, the interpolation matrices, the output) bounded before it is
    made: a RoI of 1e9 pixels with the adaptive grid, a ``sampling_ratio`` of 10**7 or an
    ``output_size`` of 10**5 is a ``ValueError``, not a ``MemoryError``.

    Returns ``(spatial_scale, sampling_ratio, start, size)`` (the geometry of steps 1-2).
    """
    spatial_scale = check_positive_finite(spatial_scale, "spatial_scale")
    sampling_ratio = check_int(sampling_ratio, "sampling_ratio")
    start, size = _geometry(rois, spatial_scale, aligned)
    K = len(rois)
    for axis, n in ((1, P[0]), (0, P[1])):  # samples per bin, in float so that nothing overflows
        g = sampling_ratio if sampling_ratio > 0 else np.ceil(size[:, axis].max(initial=0) / n)
        check_allocation(
            8.0 * K * n * max(g, 1), 8,
            f"RoIAlign's sample points ({K} RoIs x {n} bins x {g:.3g} samples per bin; pass a "
            "smaller sampling_ratio, or a positive one for RoIs much larger than the map)",
        )  # fmt: skip
    if feature_shape is not None:
        N, C, H, W = feature_shape
        check_allocation(float(K) * (P[0] * H + P[1] * W), 8, "RoIAlign's interpolation matrices")
        check_allocation(
            float(K) * C * P[0] * max(P[1], W), itemsize,
            f"RoIAlign's output ({K}, {C}, {P[0]}, {P[1]}) (output_size {P})",
        )  # fmt: skip
    return spatial_scale, sampling_ratio, start, size


def roi_align_sample_points(rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """Where RoIAlign samples, for figures and the reference: per RoI, ``(ys (P_h, g_h), xs (P_w, g_w))``
    in the feature map's array-index frame."""
    rois = as_rois(rois)
    P = as_size(output_size, "output_size")
    spatial_scale, sampling_ratio, start, size = _check_arguments(
        rois, P, spatial_scale, sampling_ratio, aligned
    )
    gy, gx = _grid(size[:, 1], P[0], sampling_ratio), _grid(size[:, 0], P[1], sampling_ratio)
    points = []
    for k in range(len(rois)):
        axes = []
        for a, (n, g) in enumerate(((P[0], gy[k]), (P[1], gx[k]))):
            axis = 1 - a  # y uses column 1 of start/size, x column 0
            b = size[k, axis] / n
            offsets = (np.arange(g) + 0.5) * b / max(g, 1)
            axes.append(start[k, axis] + np.arange(n)[:, None] * b + offsets[None, :])
        points.append(tuple(axes))
    return points


def _interpolation_matrices(start, size, pooled: int, grid: np.ndarray, length: int, dtype):
    """``(K, P, length)``: row ``p`` of RoI ``k`` averages the interpolation weights of bin ``p``'s
    samples along one axis (the factor ``1 / g`` of the bin mean goes here)."""
    K = len(start)
    g_max = max(int(grid.max(initial=0)), 1)
    b = size / pooled  # (K,)
    it = np.arange(g_max)
    coord = (
        start[:, None, None]
        + np.arange(pooled)[None, :, None] * b[:, None, None]
        + (it[None, None, :] + 0.5) * (b / np.maximum(grid, 1))[:, None, None]
    )  # (K, P, g_max)
    w = linear_interpolation_weights(coord, length, np.float64)
    real = (it[None, :] < grid[:, None])[:, None, :] / np.maximum(grid, 1)[
        :, None, None
    ]  # (K, 1, g)
    row = np.arange(K * pooled).reshape(K, pooled, 1) * length  # offset of each (k, p) row
    index = np.concatenate([(row + w.lo).ravel(), (row + w.hi).ravel()])
    weight = np.concatenate([(w.w_lo * real).ravel(), (w.w_hi * real).ravel()])
    m = np.bincount(index, weights=weight, minlength=K * pooled * length)
    return m.reshape(K, pooled, length).astype(dtype)


def _touched(m: np.ndarray) -> tuple[int, int]:
    """First and one-past-last column of a ``(P, L)`` matrix that has a non-zero: the crop to read."""
    used = np.flatnonzero(m.any(axis=0))
    return (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 0)


# maps up to this many cells are processed for all RoIs at once; larger ones RoI by RoI on a crop
_SMALL_MAP = 32 * 32


class RoIAlignCache(NamedTuple):
    """What the backward needs: the per-RoI interpolation matrices and the input's shape."""

    ay: np.ndarray  # (K, P_h, H)
    ax: np.ndarray  # (K, P_w, W)
    batch_index: np.ndarray  # (K,) int
    input_shape: tuple[int, int, int, int]


def roi_align_forward(
    input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False
):
    """RoIAlign; see the module docstring.

    Args:
        input: ``(N, C, H, W)`` feature map.
        boxes: ``(K, 5)`` RoIs ``[n, x1, y1, x2, y2]`` in image pixels, or a list of ``(L_i, 4)``.
        output_size: ``P`` or ``(P_h, P_w)``.
        spatial_scale: feature cells per image pixel (1 / stride), a finite number > 0.
        sampling_ratio: samples per bin and axis (an integer); ``<= 0`` adapts to the RoI's size.
        aligned: shift by half a cell so that pixel centres and cell centres coincide.

    Returns:
        ``(out (K, C, P_h, P_w), cache)``, the dtype of ``input``.

    Raises:
        ValueError: bad arguments, or sizes whose arrays would exceed
            ``conventions.MAX_ALLOCATION_BYTES`` (see ``_check_arguments``).
    """
    x = as_feature_map(input)
    N, C, H, W = x.shape
    rois = as_rois(boxes, num_images=N)
    P = as_size(output_size, "output_size")
    spatial_scale, sampling_ratio, start, size = _check_arguments(
        rois, P, spatial_scale, sampling_ratio, aligned, x.shape, x.dtype.itemsize
    )
    ay = _interpolation_matrices(
        start[:, 1], size[:, 1], P[0], _grid(size[:, 1], P[0], sampling_ratio), H, x.dtype
    )
    ax = _interpolation_matrices(
        start[:, 0], size[:, 0], P[1], _grid(size[:, 0], P[1], sampling_ratio), W, x.dtype
    )
    batch = rois[:, 0].astype(np.int64)
    out = np.zeros((len(rois), C) + P, dtype=x.dtype)
    if H * W <= _SMALL_MAP:
        # small maps: all RoIs of an image at once, two batched products over the whole map
        for n in np.unique(batch):
            k = np.flatnonzero(batch == n)
            hwc = np.ascontiguousarray(x[n].transpose(1, 2, 0)).reshape(H, -1)  # (H, W C)
            z = (ay[k].reshape(-1, H) @ hwc).reshape(
                len(k), P[0], W, C
            )  # rows of every RoI at once
            z = z.transpose(0, 2, 1, 3).reshape(len(k), W, -1)  # (k, W, P_h C)
            out[k] = (ax[k] @ z).reshape(len(k), P[1], P[0], C).transpose(0, 3, 2, 1)
    else:
        out_pqc = np.empty((len(rois), P[0], P[1], C), dtype=x.dtype)
        for n in np.unique(batch):
            hwc = np.ascontiguousarray(x[n].transpose(1, 2, 0))  # (H, W, C): crops become 2-D views
            for k in np.flatnonzero(batch == n):  # one RoI per step, two GEMMs on its crop
                out_pqc[k] = _align_one(hwc, ay[k], ax[k])
        out[:] = out_pqc.transpose(0, 3, 1, 2)
    return out, RoIAlignCache(ay, ax, batch, x.shape)


def roi_align_backward(dout, cache: RoIAlignCache) -> np.ndarray:
    """Gradient with respect to the feature map: ``A_y^T @ dout @ A_x`` added at each RoI's crop."""
    grad = np.zeros(cache.input_shape, dtype=cache.ay.dtype)
    dout = np.asarray(dout, dtype=cache.ay.dtype)
    H, W = cache.input_shape[2:]
    if H * W <= _SMALL_MAP:
        C, Ph, Pw = dout.shape[1:]
        for n in np.unique(cache.batch_index):
            k = np.flatnonzero(cache.batch_index == n)
            d = dout[k].transpose(0, 3, 2, 1).reshape(len(k), Pw, -1)  # (k, P_w, P_h C)
            u = cache.ax[k].transpose(0, 2, 1) @ d  # (k, W, P_h C)
            u = u.reshape(len(k), W, Ph, C).transpose(0, 2, 1, 3).reshape(len(k) * Ph, -1)
            g = cache.ay[k].reshape(-1, H).T @ u  # (H, W C): every RoI of the image in one product
            grad[n] = g.reshape(H, W, C).transpose(2, 0, 1)
        return grad
    C = cache.input_shape[1]
    for n in np.unique(cache.batch_index):
        ghwc = np.zeros((H, W, C), dtype=grad.dtype)
        for k in np.flatnonzero(cache.batch_index == n):
            _align_one_backward(ghwc, dout[k], cache.ay[k], cache.ax[k])
        grad[n] = ghwc.transpose(2, 0, 1)
    return grad


def _align_one(hwc: np.ndarray, ay: np.ndarray, ax: np.ndarray) -> np.ndarray:
    """One RoI on a channels-last map: ``(P_h, P_w, C)`` = ``A_y @ crop @ A_x^T`` per channel.

    The crop ``(h, w, C)`` of a ``(H, W, C)`` array is a 2-D strided view ``(h, w * C)``, so both
    contractions are single BLAS calls with no copy of the features.
    """
    r0, r1 = _touched(ay)
    c0, c1 = _touched(ax)
    C = hwc.shape[2]
    if r1 <= r0 or c1 <= c0:
        return np.zeros((ay.shape[0], ax.shape[0], C), hwc.dtype)
    crop = hwc[r0:r1, c0:c1].reshape(r1 - r0, -1)  # (h, w C), a view
    t = (ay[:, r0:r1] @ crop).reshape(ay.shape[0], c1 - c0, C)  # rows: (P_h, w, C)
    t = t.transpose(1, 0, 2).reshape(c1 - c0, -1)  # (w, P_h C)
    return (
        (ax[:, c0:c1] @ t).reshape(ax.shape[0], ay.shape[0], C).transpose(1, 0, 2)
    )  # (P_h, P_w, C)


def _align_one_backward(ghwc: np.ndarray, dout: np.ndarray, ay: np.ndarray, ax: np.ndarray) -> None:
    """Add ``A_y^T @ dout @ A_x`` (per channel) of one RoI into a channels-last gradient, in place."""
    r0, r1 = _touched(ay)
    c0, c1 = _touched(ax)
    if r1 <= r0 or c1 <= c0:
        return
    C, Ph, Pw = dout.shape
    d = dout.transpose(2, 1, 0).reshape(Pw, -1)  # (P_w, P_h C)
    t = (
        (ax[:, c0:c1].T @ d).reshape(c1 - c0, Ph, C).transpose(1, 0, 2).reshape(Ph, -1)
    )  # (P_h, w C)
    ghwc[r0:r1, c0:c1].reshape(r1 - r0, -1)[...] += ay[:, r0:r1].T @ t  # (h, w C)


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """torchvision's ``roi_align``: ``(N, C, H, W)`` features, ``(K, 5)`` RoIs -> ``(K, C, P_h, P_w)``."""
    return roi_align_forward(input, boxes, output_size, spatial_scale, sampling_ratio, aligned)[0]


def roi_align_reference(
    input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False
):
    """Loops over RoIs, bins and samples, each read by ``bilinear_interpolate``: the teaching path."""
    x = as_feature_map(input).astype(np.float64)
    rois = as_rois(boxes, num_images=x.shape[0])
    P = as_size(output_size, "output_size")
    _check_arguments(rois, P, spatial_scale, sampling_ratio, aligned, x.shape)
    out = np.zeros((len(rois), x.shape[1]) + P)
    points = roi_align_sample_points(rois, P, spatial_scale, sampling_ratio, aligned)
    for k, (ys, xs) in enumerate(points):
        for ph in range(P[0]):
            for pw in range(P[1]):
                samples = [
                    bilinear_interpolate(x[int(rois[k, 0])], y, xx) for y in ys[ph] for xx in xs[pw]
                ]
                if samples:
                    out[k, :, ph, pw] = np.mean(samples, axis=0)
    return out


class RoIAlign(Module):
    """``RoIAlign(output_size, spatial_scale, sampling_ratio=-1, aligned=False)``: ``forward(features,
    rois)``; ``backward`` returns the gradient for the features (RoIs are constants)."""

    def __init__(
        self, output_size, spatial_scale: float, sampling_ratio: int = -1, aligned: bool = False
    ):
        as_size(output_size, "output_size")
        self.output_size = output_size
        self.spatial_scale = check_positive_finite(spatial_scale, "spatial_scale")
        self.sampling_ratio = check_int(sampling_ratio, "sampling_ratio")
        self.aligned = bool(aligned)

    def _forward(self, input, rois):
        return roi_align_forward(
            input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def _backward(self, dout, cache):
        return roi_align_backward(dout, cache)

    def __repr__(self) -> str:
        return (
            f"RoIAlign(output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned})"
        )
