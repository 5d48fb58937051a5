"""Training targets of the RoI heads: sample proposals, give each a class and box deltas.

Fast R-CNN's recipe: add the ground-truth boxes to the proposals (so positives exist from the first
step), match by IoU, and sample a fixed number of RoIs per image with at most a quarter foreground.
Foreground is IoU >= 0.5 and takes its ground truth's class; background takes class 0. The paper
counted as background only IoU in ``[0.1, 0.5)`` (below 0.1 ignored); torchvision uses everything below
0.5 (``bg_iou_low=0.0``). Box targets use ``BoxCoder`` weights (10, 10, 5, 5).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..box_coder import BoxCoder
from ..boxes import box_iou
from .matcher import Matcher
from .sampler import BalancedPositiveNegativeSampler

__all__ = ["RoITargets", "sample_roi_targets", "select_training_samples"]


class RoITargets(NamedTuple):
    """The sampled RoIs of one image and their targets; ``R`` sampled RoIs."""

    proposals: np.ndarray  # (R, 4) float32 boxes in image pixels
    labels: np.ndarray  # (R,) int64: class of the matched ground truth, 0 for background
    deltas: np.ndarray  # (R, 4) float32 regression targets towards the matched box (fg only)
    matched_gt: np.ndarray  # (R,) int64 index of the matched ground truth, -1 for background


def sample_roi_targets(
    proposals,
    gt_boxes,
    gt_labels,
    rng: np.random.Generator,
    fg_iou_thresh: float = 0.5,
    bg_iou_low: float = 0.0,
    batch_size_per_image: int = 512,
    positive_fraction: float = 0.25,
    box_coder: BoxCoder | None = None,
) -> RoITargets:
    """Sample RoIs from ``proposals`` plus the ground truth, and build their targets.

    Args:
        proposals: ``(R0, 4)`` proposals of one image (selective search or the RPN), constants.
        gt_boxes: ``(G, 4)`` ground-truth boxes; ``gt_labels``: ``(G,)`` classes ``>= 1``.
        rng: random generator of the sampler.
        fg_iou_thresh: IoU at or above which a RoI is foreground.
        bg_iou_low: background needs IoU in ``[bg_iou_low, fg_iou_thresh)``; lower is ignored.

    Returns:
        :class:`RoITargets`, foreground RoIs first.
    """
    gt = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    if len(gt_labels) != len(gt):
        raise ValueError(
            f"gt_labels must have one label per box; got {len(gt_labels)} for {len(gt)}"
        )
    boxes = np.concatenate([np.asarray(proposals, np.float32).reshape(-1, 4), gt])
    coder = box_coder or BoxCoder((10.0, 10.0, 5.0, 5.0))
    # the matcher's "low" threshold marks the ignored band below bg_iou_low
    matches = Matcher(fg_iou_thresh, fg_iou_thresh)(box_iou(gt, boxes))
    iou_best = box_iou(gt, boxes).max(axis=0) if len(gt) else np.zeros(len(boxes))
    labels = np.where(matches >= 0, gt_labels[np.maximum(matches, 0)] if len(gt) else 0, 0)
    labels[(matches < 0) & (iou_best < bg_iou_low)] = -1
    sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
    pos, neg = sampler(labels, rng)
    keep = np.concatenate([np.flatnonzero(pos), np.flatnonzero(neg)])
    boxes, labels, matched = boxes[keep], labels[keep], matches[keep]
    deltas = np.zeros((len(keep), 4), np.float32)
    fg = labels > 0
    if fg.any():
        deltas[fg] = coder.encode_single(gt[matched[fg]], boxes[fg])
    matched = np.where(fg, matched, -1)
    return RoITargets(boxes, labels.astype(np.int64), deltas, matched.astype(np.int64))


def select_training_samples(
    proposals, targets, rng: np.random.Generator, **kwargs
) -> list[RoITargets]:
    """:func:`sample_roi_targets` for each image of a batch (torchvision's
    ``RoIHeads.select_training_samples``), images in order, one ``rng``.

    Args:
        proposals: ``N`` arrays ``(R_i, 4)`` of proposals in image pixels (constants).
        targets: ``N`` dicts with ``"boxes"`` ``(G_i, 4)`` and ``"labels"`` ``(G_i,)``.
        kwargs: :func:`sample_roi_targets`'s thresholds, sampling numbers and ``box_coder``.

    Returns:
        ``N`` :class:`RoITargets`.
    """
    if len(proposals) != len(targets):
        raise ValueError(
            f"proposals and targets must have one entry per image; got {len(proposals)} and "
            f"{len(targets)}"
        )
    return [
        sample_roi_targets(p, t["boxes"], t["labels"], rng, **kwargs)
        for p, t in zip(proposals, targets, strict=True)
    ]
