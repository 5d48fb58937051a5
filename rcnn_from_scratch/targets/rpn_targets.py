"""Training targets of the Region Proposal Network: which anchors are objects, and where the box is.

Faster R-CNN's rules (torchvision's defaults): an anchor is positive when its IoU with some ground
truth is >= 0.7 *or* it is that ground truth's best anchor (so no object goes without one), negative
below 0.3, ignored in between; 256 anchors are sampled per image, at most half positive. Positives learn
the deltas that move them onto their ground truth (``BoxCoder`` weights 1, 1, 1, 1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..box_coder import BoxCoder
from ..boxes import box_iou
from .matcher import Matcher
from .sampler import BalancedPositiveNegativeSampler

__all__ = ["RPNTargets", "assign_rpn_targets", "assign_targets_to_anchors"]


class RPNTargets(NamedTuple):
    """Targets of one image's anchors; ``A_total`` anchors."""

    labels: np.ndarray  # (A_total,) float32: 1 object, 0 background, -1 ignored
    deltas: np.ndarray  # (A_total, 4) float32 regression targets (meaningful where labels == 1)
    sampled_pos: np.ndarray  # (A_total,) bool: positives that enter the loss
    sampled_neg: np.ndarray  # (A_total,) bool: negatives that enter the loss


def assign_rpn_targets(
    anchors,
    gt_boxes,
    rng: np.random.Generator,
    fg_iou_thresh: float = 0.7,
    bg_iou_thresh: float = 0.3,
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
    box_coder: BoxCoder | None = None,
) -> RPNTargets:
    """Label, encode and sample the anchors of one image.

    Args:
        anchors: ``(A_total, 4)`` anchors ``x1, y1, x2, y2`` in image pixels.
        gt_boxes: ``(G, 4)`` ground-truth boxes (``G`` may be 0: every anchor is then background).
        rng: random generator of the sampler.

    Returns:
        :class:`RPNTargets`.
    """
    anchors = np.asarray(anchors, dtype=np.float32)
    gt = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    coder = box_coder or BoxCoder((1.0, 1.0, 1.0, 1.0))
    matches = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)(
        box_iou(gt, anchors)
    )
    labels = np.where(matches >= 0, 1.0, 0.0).astype(np.float32)
    labels[matches == Matcher.BETWEEN_THRESHOLDS] = -1.0
    deltas = np.zeros((len(anchors), 4), np.float32)
    positive = matches >= 0
    if positive.any():
        deltas[positive] = coder.encode_single(gt[matches[positive]], anchors[positive])
    sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
    pos, neg = sampler(labels.astype(np.int64), rng)
    return RPNTargets(labels, deltas, pos, neg)


def assign_targets_to_anchors(
    anchors, targets, rng: np.random.Generator, **kwargs
) -> list[RPNTargets]:
    """:func:`assign_rpn_targets` for each image of a batch (torchvision's
    ``RegionProposalNetwork.assign_targets_to_anchors``), images in order, one ``rng``.

    Args:
        anchors: ``(A_total, 4)`` anchors in image pixels, the same for every image of the batch.
        targets: ``N`` dicts with ``"boxes"`` ``(G_i, 4)``.
        kwargs: :func:`assign_rpn_targets`'s thresholds, sampling numbers and ``box_coder``.

    Returns:
        ``N`` :class:`RPNTargets`.
    """
    return [assign_rpn_targets(anchors, t["boxes"], rng, **kwargs) for t in targets]
