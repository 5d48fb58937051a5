"""The proposal layer: from the RPN's scores and deltas over all anchors to a few hundred proposals.

The order matters, and is torchvision's (a test pins it): keep the ``pre_nms_top_n`` anchors with the
highest objectness, decode their deltas, clip to the image, drop boxes smaller than ``min_size``, drop
scores below ``score_thresh``, run NMS at 0.7, keep the first ``post_nms_top_n``. Training uses larger N
than inference. No gradient flows back through proposals: they are constants for the RoI heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..box_coder import BoxCoder
from ..boxes import clip_boxes_to_image, nms, remove_small_boxes

__all__ = ["ProposalConfig", "select_proposals"]


@dataclass(frozen=True)
class ProposalConfig:
    """Numbers of the proposal layer; the defaults are torchvision's for training."""

    pre_nms_top_n: int = 2000
    post_nms_top_n: int = 2000
    nms_thresh: float = 0.7
    min_size: float = 1e-3
    score_thresh: float = 0.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


def select_proposals(
    objectness,
    deltas,
    anchors,
    image_size,
    config: ProposalConfig = ProposalConfig(),
    box_coder: BoxCoder | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Proposals of one image.

    Args:
        objectness: ``(A_total,)`` logits, one per anchor.
        deltas: ``(A_total, 4)`` predicted deltas, one set per anchor.
        anchors: ``(A_total, 4)`` anchors ``x1, y1, x2, y2`` in image pixels.
        image_size: ``(H, W)``.
        config: the numbers; see :class:`ProposalConfig`.

    Returns:
        ``(boxes (R, 4) float32, scores (R,) float32)``, sorted by decreasing objectness probability.
    """
    objectness = np.asarray(objectness, dtype=np.float32).reshape(-1)
    deltas = np.asarray(deltas, dtype=np.float32).reshape(-1, 4)
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
    if not len(objectness) == len(deltas) == len(anchors):
        raise ValueError(
            f"objectness, deltas and anchors must have one row per anchor; got {len(objectness)}, "
            f"{len(deltas)} and {len(anchors)}"
        )
    coder = box_coder or BoxCoder((1.0, 1.0, 1.0, 1.0))
    k = min(config.pre_nms_top_n, len(objectness))
    top = np.argsort(-objectness, kind="stable")[:k]
    boxes = coder.decode_single(deltas[top], anchors[top])
    boxes = clip_boxes_to_image(boxes, image_size)
    scores = _sigmoid(objectness[top])
    keep = remove_small_boxes(boxes, config.min_size)
    keep = keep[scores[keep] >= config.score_thresh]
    boxes, scores = boxes[keep], scores[keep]
    keep = nms(boxes, scores, config.nms_thresh)[: config.post_nms_top_n]
    return boxes[keep].astype(np.float32), scores[keep].astype(np.float32)
