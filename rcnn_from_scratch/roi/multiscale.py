"""RoIAlign over a feature pyramid: each RoI is read from the one level that suits its size.

A feature pyramid (FPN) gives maps at strides 4, 8, 16, 32 (levels ``k = 2..5``: stride ``2 ** k``).
A small RoI should read the fine map, a large one the coarse map, so that every RoI covers about the
same number of cells. The FPN paper's rule (its equation 1) picks the level

    k = floor(k0 + log2(sqrt(w h) / 224)),   clamped to [k_min, k_max],

with ``k0 = 4`` for a 224 x 224 RoI, the ImageNet size a ResNet's C4 features were made for: each
halving of the RoI's side moves one level finer. torchvision's ``LevelMapper`` adds ``1e-6`` after
the ``log2`` so that a side of exactly 112, 224 or 448 lands on the upper level despite rounding, and
computes in float32; a zero-area box has ``log2(0) = -inf`` and lands on ``k_min``. Measured:

    sqrt(area)   5   32  111  112  224  447  448  1000
    level index  0    0    0    1    2    2    3     3      (index = k - k_min; '0'..'3')

The stride of each map is not given; torchvision infers it from the heights alone,
``scale = 2 ** round(log2(feature_h / image_h))`` with the largest resized, *unpadded* image height
of the batch (:func:`setup_scales`). torchvision caches the scales after the first call; we recompute
them per call (cheap, and never stale when the image size changes).

Then each level's RoIs go through :func:`~rcnn_from_scratch.roi.roi_align.roi_align_forward`
(``aligned=False``, as torchvision's detectors call it) and the results are scattered back into the
RoIs' order. The backward sends each RoI's gradient to its own level only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..conventions import as_boxes, as_feature_map, as_rois, as_size
from ..nn.module import Module
from .roi_align import RoIAlignCache, roi_align_backward, roi_align_forward

__all__ = [
    "level_of_boxes",
    "infer_scale",
    "setup_scales",
    "multiscale_roi_align_forward",
    "multiscale_roi_align_backward",
    "MultiScaleRoIAlign",
]


def level_of_boxes(
    boxes, k_min: int, k_max: int, canonical_scale=224, canonical_level=4, eps=1e-6
) -> np.ndarray:
    """The FPN level rule (torchvision's ``LevelMapper``), in float32 whatever the input dtype.

    Args:
        boxes: ``(K, 4)`` boxes ``x1, y1, x2, y2`` in (resized) image pixels.
        k_min, k_max: the finest and coarsest pyramid level, e.g. 2 and 5.
        canonical_scale: the RoI side that maps to ``canonical_level`` (224).
        canonical_level: ``k0`` (4).
        eps: added after the ``log2``, before the ``floor``.

    Returns:
        ``(K,)`` int64 level indices ``0..k_max - k_min``.
    """
    b = as_boxes(boxes).astype(np.float32, copy=False)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    with np.errstate(divide="ignore"):  # a zero-area box: log2(0) = -inf, clamped to k_min
        k = np.floor(
            np.float32(canonical_level)
            + np.log2(np.sqrt(area) / np.float32(canonical_scale))
            + np.float32(eps)
        )
    return (np.clip(k, k_min, k_max) - k_min).astype(np.int64)


def infer_scale(feature_size, image_size) -> float:
    """Feature cells per image pixel, ``2 ** round(log2(feature_h / image_h))`` (heights only).

    Args:
        feature_size: ``(h, w)`` of the feature map (or a longer shape ending in ``h, w``).
        image_size: ``(H, W)`` of the largest resized, unpadded image.

    Returns:
        The scale, a power of two such as ``0.25``.
    """
    ratio = np.float32(float(feature_size[-2]) / float(image_size[0]))
    return float(2.0 ** float(np.round(np.log2(ratio))))  # round half to even, as torch.round


def setup_scales(feature_shapes, image_shapes) -> tuple[list[float], int, int]:
    """Scales of the maps and the levels they are (torchvision's ``_setup_scales``).

    Args:
        feature_shapes: one shape per map, finest first, each ending in ``(h, w)``.
        image_shapes: ``(H, W)`` per image, the resized sizes before padding; the maximum height
            and width over the batch are used.

    Returns:
        ``(scales, k_min, k_max)``: ``scales[l]`` for map ``l``; ``k_min = -log2(scales[0])``,
        ``k_max = -log2(scales[-1])`` (e.g. ``[0.25, 0.125, 0.0625, 0.03125], 2, 5``).
    """
    image_shapes = [tuple(int(v) for v in s) for s in image_shapes]
    if not image_shapes:
        raise ValueError("image_shapes must list at least one (H, W)")
    if not feature_shapes:
        raise ValueError("feature_shapes must list at least one map's shape")
    largest = (max(s[0] for s in image_shapes), max(s[1] for s in image_shapes))
    scales = [infer_scale(f, largest) for f in feature_shapes]
    k_min = int(-np.log2(np.float32(scales[0])))
    k_max = int(-np.log2(np.float32(scales[-1])))
    return scales, k_min, k_max


class MultiScaleCache(NamedTuple):
    """What the backward needs: which RoIs each level read, and that level's RoIAlign cache."""

    levels: np.ndarray  # (K,) int64 level index of each RoI
    index: tuple[np.ndarray, ...]  # per level, the rows of the RoIs it read
    level_caches: tuple[RoIAlignCache | None, ...]  # per level; None when it read no RoI
    feature_shapes: tuple[tuple[int, int, int, int], ...]
    dtype: np.dtype


def multiscale_roi_align_forward(
    features: Sequence[np.ndarray],
    rois,
    output_size,
    sampling_ratio: int,
    scales: Sequence[float],
    k_min: int,
    k_max: int,
    canonical_scale=224,
    canonical_level=4,
):
    """RoIAlign of each RoI on its level's map.

    Args:
        features: ``L`` maps ``(N, C, H_l, W_l)``, finest first (``L = k_max - k_min + 1``).
        rois: ``(K, 5)`` RoIs ``[n, x1, y1, x2, y2]`` in image pixels, or a list of ``(L_i, 4)``.
        output_size: ``P`` or ``(P_h, P_w)``.
        sampling_ratio: samples per bin and axis (2 in torchvision's detectors).
        scales: ``L`` floats, feature cells per image pixel of each map (:func:`setup_scales`).
        k_min, k_max: the pyramid levels of the first and last map.
        canonical_scale, canonical_level: the level rule's constants (:func:`level_of_boxes`).

    Returns:
        ``(out (K, C, P_h, P_w), cache)``; with a single map every RoI reads it (no level rule,
        as torchvision).
    """
    maps = [as_feature_map(f, f"features[{i}]") for i, f in enumerate(features)]
    if not maps:
        raise ValueError("features must hold at least one (N, C, H, W) map")
    if len(scales) != len(maps):
        raise ValueError(f"scales must give one scale per map ({len(maps)}); got {len(scales)}")
    if len(maps) > 1 and k_max - k_min + 1 != len(maps):
        raise ValueError(
            f"k_min..k_max must span the {len(maps)} maps; got k_min={k_min}, k_max={k_max}"
        )
    N, C = maps[0].shape[:2]
    if any(f.shape[:2] != (N, C) for f in maps):
        raise ValueError(f"features must share N and C; got shapes {[f.shape for f in maps]}")
    r = as_rois(rois, num_images=N)
    P = as_size(output_size, "output_size")
    dtype = np.result_type(*maps)
    if len(maps) == 1:
        levels = np.zeros(len(r), np.int64)
    else:
        levels = level_of_boxes(r[:, 1:], k_min, k_max, canonical_scale, canonical_level)
    out = np.zeros((len(r), C) + P, dtype=dtype)  # (K, C, P_h, P_w)
    index, caches = [], []
    for lv, (f, scale) in enumerate(zip(maps, scales, strict=True)):
        rows = np.flatnonzero(levels == lv)
        index.append(rows)
        if len(rows) == 0:
            caches.append(None)
            continue
        out_l, cache_l = roi_align_forward(f, r[rows], P, scale, sampling_ratio, aligned=False)
        out[rows] = out_l  # scattered back into the RoIs' order
        caches.append(cache_l)
    cache = MultiScaleCache(
        levels, tuple(index), tuple(caches), tuple(f.shape for f in maps), dtype
    )
    return out, cache


def multiscale_roi_align_backward(dout, cache: MultiScaleCache) -> list[np.ndarray]:
    """Gradients with respect to the maps: each RoI's ``dout`` goes to its own level.

    Args:
        dout: ``(K, C, P_h, P_w)`` gradient of the output.
        cache: from :func:`multiscale_roi_align_forward`.

    Returns:
        ``L`` arrays, one per map, of the maps' shapes (zero where no RoI read).
    """
    dout = np.asarray(dout)
    K = len(cache.levels)
    if dout.ndim != 4 or len(dout) != K:
        raise ValueError(f"dout must have shape (K, C, P_h, P_w) with K = {K}; got {dout.shape}")
    grads = []
    for rows, c, shape in zip(cache.index, cache.level_caches, cache.feature_shapes, strict=True):
        if c is None:
            grads.append(np.zeros(shape, cache.dtype))
        else:
            grads.append(roi_align_backward(dout[rows], c))
    return grads


class MultiScaleRoIAlign(Module):
    """torchvision's ``MultiScaleRoIAlign(featmap_names, output_size, sampling_ratio, *,
    canonical_scale=224, canonical_level=4)``.

    ``forward(features, boxes, image_shapes)``: ``features`` a dict name -> ``(N, C, H_l, W_l)``
    map (the maps named in ``featmap_names`` are used, in the dict's order, finest first, as
    torchvision does); ``boxes`` a list of ``(L_i, 4)`` boxes ``x1, y1, x2, y2`` per image in
    resized-image pixels; ``image_shapes`` the resized, unpadded ``(H, W)`` per image. Returns
    ``(K, C, P, P)``, ``K = sum L_i``, in the boxes' order; ``(0, C, P, P)`` for no boxes.
    After a forward, ``last_levels`` ``(K,)`` holds each RoI's level index (for inspection).

    ``backward(dout)`` -> dict name -> gradient of that map (boxes are constants).
    """

    def __init__(
        self,
        featmap_names: Sequence[str],
        output_size,
        sampling_ratio: int,
        *,
        canonical_scale: int = 224,
        canonical_level: int = 4,
    ):
        self.featmap_names = [str(n) for n in featmap_names]
        if not self.featmap_names:
            raise ValueError("featmap_names must name at least one feature map")
        self.output_size = as_size(output_size, "output_size")
        self.sampling_ratio = int(sampling_ratio)
        self.canonical_scale, self.canonical_level = canonical_scale, canonical_level
        self.last_levels: np.ndarray | None = None

    def _forward(self, features, boxes, image_shapes):
        missing = [n for n in self.featmap_names if n not in features]
        if missing:
            raise ValueError(
                f"features lacks the map(s) {missing} named in featmap_names; has {list(features)}"
            )
        names = [n for n in features if n in self.featmap_names]  # the dict's order
        maps = [features[n] for n in names]
        scales, k_min, k_max = setup_scales([np.shape(m) for m in maps], image_shapes)
        boxes = [as_boxes(b, f"boxes[{i}]", dtype=np.float64) for i, b in enumerate(boxes)]
        out, cache = multiscale_roi_align_forward(
            maps, boxes, self.output_size, self.sampling_ratio, scales, k_min, k_max,
            self.canonical_scale, self.canonical_level,
        )  # fmt: skip
        self.last_levels = cache.levels
        return out, (names, cache)

    def _backward(self, dout, cache):
        names, inner = cache
        return dict(zip(names, multiscale_roi_align_backward(dout, inner), strict=True))

    def __repr__(self) -> str:
        return (
            f"MultiScaleRoIAlign(featmap_names={self.featmap_names}, "
            f"output_size={self.output_size}, sampling_ratio={self.sampling_ratio})"
        )
