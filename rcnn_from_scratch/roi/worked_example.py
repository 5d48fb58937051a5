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

__all__ = [
    "WorkedExample",
    "worked_example",
    "bin_misalignment",
    "MaskThroughRoI",
    "mask_through_roi",
]


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


@dataclass(frozen=True)
class MaskThroughRoI:
    """The worked example's object read back as a mask through each RoI operator."""

    truth: np.ndarray  # (H, W) bool: the object
    feature: np.ndarray  # (S, S) float: the object's coverage of each feature cell
    pooled: np.ndarray  # (P, P): what RoI pooling reads for the object's box
    aligned: np.ndarray  # (P, P): what RoIAlign reads
    pooled_mask: np.ndarray  # (H, W) bool: ``pooled`` pasted back into the box at 0.5
    aligned_mask: np.ndarray  # (H, W) bool
    iou_pooled: float
    iou_aligned: float


def mask_through_roi(image_size: int = 128, roi=(40.0, 40.0, 55.0, 55.0), feature_size: int = 25,
                     output_size: int = 14) -> MaskThroughRoI:  # fmt: skip
    """What the worked example does to a mask: a disc filling the 15 x 15 RoI is seen on a 25 x 25
    feature map (each cell holds the fraction of it the disc covers), read by RoI pooling and by
    RoIAlign at ``output_size`` (the mask head's 14), pasted back into the box and thresholded at
    0.5, as Mask R-CNN does with its predictions. The IoU with the disc measures what was lost
    before any learning: RoI pooling reads the 2 whole cells it snapped to, RoIAlign the 2.93 cells
    where the object is.
    """
    from ..postprocess import paste_masks_in_image
    from .roi_align import roi_align
    from .roi_pool import roi_pool

    x1, y1, x2, y2 = (float(v) for v in roi)
    cy, cx = np.mgrid[0:image_size, 0:image_size] + 0.5  # pixel centres
    r = min(x2 - x1, y2 - y1) / 2
    truth = (cx - (x1 + x2) / 2) ** 2 + (cy - (y1 + y2) / 2) ** 2 <= r**2
    # coverage of each feature cell, by 8 x 8 supersampling of the disc
    fine = 8 * feature_size
    fy, fx = (np.mgrid[0:fine, 0:fine] + 0.5) * image_size / fine
    disc = (fx - (x1 + x2) / 2) ** 2 + (fy - (y1 + y2) / 2) ** 2 <= r**2
    feature = disc.reshape(feature_size, 8, feature_size, 8).mean(axis=(1, 3)).astype(np.float32)
    rois = np.array([[0, x1, y1, x2, y2]], np.float32)
    scale = feature_size / image_size
    fmap = feature[None, None]
    pooled = roi_pool(fmap, rois, output_size, scale)[0, 0]
    aligned = roi_align(fmap, rois, output_size, scale, sampling_ratio=2, aligned=True)[0, 0]
    box = np.array([[x1, y1, x2, y2]], np.float32)
    masks = paste_masks_in_image(np.stack([pooled, aligned]), np.repeat(box, 2, 0),
                                 (image_size, image_size))  # fmt: skip

    def iou(m):
        return float((m & truth).sum() / max((m | truth).sum(), 1))

    return MaskThroughRoI(truth, feature, pooled, aligned, masks[0], masks[1], iou(masks[0]),
                          iou(masks[1]))  # fmt: skip
