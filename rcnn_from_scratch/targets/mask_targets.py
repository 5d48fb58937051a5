"""Training targets of the mask head: each positive RoI's ground-truth mask, seen through the RoI.

The mask head predicts an ``M x M`` mask *in the RoI's frame* (``M = 28``): cell ``(0, 0)`` is the
RoI's top-left corner, whatever the RoI's size and position in the image. So its target must be in
that frame too: the matched object's full-image mask, cropped to the RoI and resampled to
``M x M``. A RoI that is shifted from its object sees the object shifted; a RoI larger than its
object sees it small and surrounded by background; this is exactly what the head must learn to
output for such a RoI.

Cropping and resampling a map to a fixed grid over a box is what RoIAlign does, so the target is
RoIAlign of the mask (torchvision's ``project_masks_on_boxes``): the ``G`` instance masks are
stacked as a batch of one-channel images, and each RoI's batch index is its matched instance. The
values are averages of bilinear samples, so they lie in ``[0, 1]`` and are soft along the object's
border; the loss uses them as they are (binary cross-entropy accepts soft targets), and only the
pasted prediction is thresholded at 0.5.
"""

from __future__ import annotations

import numpy as np

from ..conventions import as_boxes
from ..roi.roi_align import roi_align

__all__ = ["project_masks_on_boxes"]


def project_masks_on_boxes(gt_masks, boxes, matched_gt, size: int = 28) -> np.ndarray:
    """RoIAlign of each RoI's matched ground-truth mask over the RoI: the mask head's targets.

    torchvision's semantics: ``roi_align(masks[:, None], [matched_gt, boxes], (size, size),
    spatial_scale=1, sampling_ratio=0 (adaptive), aligned=False)[:, 0]``, in one call.

    Args:
        gt_masks: ``(G, H, W)`` instance masks of one image, bool or uint8 (0/1), or float in
            ``[0, 1]``; pixel ``(row i, col j)`` covers ``[j, j + 1) x [i, i + 1)``.
        boxes: ``(K, 4)`` positive RoIs ``x1, y1, x2, y2`` in image pixels (the same frame).
        matched_gt: ``(K,)`` int index in ``[0, G)`` of each RoI's ground truth
            (``RoITargets.matched_gt`` of the foreground RoIs).
        size: ``M``, the side of the head's output mask.

    Returns:
        ``(K, size, size)`` float32 in ``[0, 1]``, row-major in the RoI's frame (row 0 at ``y1``,
        column 0 at ``x1``). ``K = 0`` gives ``(0, size, size)``.

    Raises:
        ValueError: wrong shapes, masks outside ``[0, 1]``, a ``matched_gt`` that is not an integer
            in ``[0, G)`` (background RoIs, ``-1``, have no mask target), or ``size < 1``.
    """
    masks = np.asarray(gt_masks)
    if masks.ndim != 3:
        raise ValueError(
            f"gt_masks must have shape (G, H, W), one mask per instance; got {masks.shape}"
        )
    if not (masks.dtype == bool or np.issubdtype(masks.dtype, np.number)):
        raise ValueError(f"gt_masks must be bool, uint8 or float; got dtype {masks.dtype}")
    masks = masks.astype(np.float32)
    if masks.size and not (np.all(np.isfinite(masks)) and masks.min() >= 0 and masks.max() <= 1):
        raise ValueError("gt_masks must hold values in [0, 1] (0/1 instance masks)")
    rois = as_boxes(boxes, "boxes", dtype=np.float32)
    matched = np.asarray(matched_gt)
    if matched.shape != (len(rois),):
        raise ValueError(
            f"matched_gt must have shape ({len(rois)},), one index per box; got {matched.shape}"
        )
    if matched.size and not np.issubdtype(matched.dtype, np.integer):
        raise ValueError(f"matched_gt must hold integer indices; got dtype {matched.dtype}")
    G = len(masks)
    if matched.size and (matched.min() < 0 or matched.max() >= G):
        raise ValueError(
            f"matched_gt must index the {G} ground-truth mask(s), in [0, {G}); got values in "
            f"[{int(matched.min())}, {int(matched.max())}] (only foreground RoIs have mask targets)"
        )
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive int; got {size!r}")
    size = int(size)
    if len(rois) == 0:
        return np.zeros((0, size, size), np.float32)
    # the G masks are a batch of one-channel images; a RoI's batch index is its matched instance
    rois = np.concatenate([matched.astype(np.float32)[:, None], rois], axis=1)
    out = roi_align(masks[:, None], rois, (size, size), 1.0, 0, False)  # (K, 1, size, size)
    return np.clip(out[:, 0], 0.0, 1.0)  # rounding can leave 1 + 1e-7
