"""The lecture's worked example, and what RoI pooling's rounding costs, measured.

A 15 x 15 RoI in a 128 x 128 image lands on a 25 x 25 feature map as ``15 * 25 / 128 = 2.93`` cells.
RoI pooling snaps it to whole cells: the lecture's version keeps 2 and loses 0.93 of a cell (almost
5 image pixels); RoIAlign keeps the 2.93 and reads it bilinearly. :func:`worked_example` gives these
numbers for any sizes.

:func:`bin_misalignment` measures the cost over many random RoIs: for every output bin, how far (in
image pixels) the region RoI pooling actually reads is from the region the bin should cover. It uses
the real operators' geometry (``roi_pool_bins`` and RoIAlign's bin edges), not a formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .roi_align import _geometry
from .roi_pool import roi_pool_bins

__all__ = ["WorkedExample", "worked_example", "bin_misalignment"]


@dataclass(frozen=True)
class WorkedExample:
    """One RoI side mapped onto a feature map."""

    image_size: int
    roi_size: float
    feature_size: int
    stride: float  # image pixels per feature cell
    roi_cells: float  # the RoI's extent on the feature map, exact
    pooled_cells: int  # what RoI pooling keeps (whole cells, rounded down)
    lost_cells: float  # roi_cells - pooled_cells
    lost_pixels: float  # the same in image pixels

    def __str__(self) -> str:
        return (
            f"A {self.roi_size:g} x {self.roi_size:g} RoI in a {self.image_size} x {self.image_size} image "
            f"lands on a {self.feature_size} x {self.feature_size} feature map as "
            f"{self.roi_size:g} * {self.feature_size} / {self.image_size} = {self.roi_cells:.2f} cells.\n"
            f"RoI pooling rounds it to {self.pooled_cells} and loses {self.lost_cells:.2f} cells "
            f"({self.lost_pixels:.2f} image pixels); RoIAlign keeps {self.roi_cells:.2f}."
        )


def worked_example(
    image_size: int = 128, roi_size: float = 15, feature_size: int = 25
) -> WorkedExample:
    """The lecture's numbers for any image, RoI and feature-map size (defaults: 128, 15, 25)."""
    if image_size <= 0 or feature_size <= 0 or roi_size < 0:
        raise ValueError("image_size and feature_size must be positive and roi_size non-negative")
    cells = roi_size * feature_size / image_size
    kept = math.floor(cells)
    stride = image_size / feature_size
    return WorkedExample(
        image_size,
        roi_size,
        feature_size,
        stride,
        cells,
        kept,
        cells - kept,
        (cells - kept) * stride,
    )


def bin_misalignment(stride: int, num_rois: int = 2000, output_size: int = 7, image_size: int = 800,
                     seed: int = 0) -> dict[str, np.ndarray]:  # fmt: skip
    """Misalignment of every bin edge, in image pixels, for random RoIs at one feature stride.

    The ideal edges of bin ``p`` of a RoI ``[x1, x2)`` are ``x1 + p (x2 - x1) / P``. RoI pooling reads
    whole cells ``[start, end)``, i.e. the image interval ``[start * stride, end * stride)``. RoIAlign
    (``aligned=True``) puts its bin edges at ``start + p * bin`` in feature coordinates, which maps back
    to the image as ``(coordinate + 0.5) * stride``.

    Returns:
        ``{"roi_pool": (num_rois * 4 P,), "roi_align": (num_rois * 4 P,)}`` absolute edge errors.
    """
    rng = np.random.default_rng(seed)
    wh = rng.uniform(16, image_size / 2, (num_rois, 2))
    xy = rng.uniform(0, 1, (num_rois, 2)) * (image_size - wh)
    rois = np.hstack([np.zeros((num_rois, 1)), xy, xy + wh])
    P = output_size
    p = np.arange(P)
    ideal_lo = {a: rois[:, 1 + a, None] + p * wh[:, a, None] / P for a in (0, 1)}  # a: 0 = x, 1 = y
    ideal_hi = {a: rois[:, 1 + a, None] + (p + 1) * wh[:, a, None] / P for a in (0, 1)}
    side = int(math.ceil(image_size / stride))
    y0, y1, x0, x1 = roi_pool_bins(rois, 1.0 / stride, (P, P), side, side)
    pool = np.concatenate([
        np.abs(x0 * stride - ideal_lo[0]), np.abs(x1 * stride - ideal_hi[0]),
        np.abs(y0 * stride - ideal_lo[1]), np.abs(y1 * stride - ideal_hi[1]),
    ], axis=1)  # fmt: skip
    start, size = _geometry(rois, 1.0 / stride, aligned=True)
    align = []
    for a in (0, 1):
        lo = (start[:, a, None] + p * size[:, a, None] / P + 0.5) * stride
        hi = (start[:, a, None] + (p + 1) * size[:, a, None] / P + 0.5) * stride
        align += [np.abs(lo - ideal_lo[a]), np.abs(hi - ideal_hi[a])]
    return {"roi_pool": pool.ravel(), "roi_align": np.concatenate(align, axis=1).ravel()}
