"""The proposal layer: from the RPN's scores and deltas over all anchors to a few hundred proposals.

The order matters, and is torchvision's (``RegionProposalNetwork.filter_proposals``; a test pins it):

1. per pyramid level, keep the ``pre_nms_top_n`` anchors with the highest objectness logit (one
   level for a single feature map; up to ``5 * pre_nms_top_n`` candidates over an FPN's five);
2. decode their deltas (weights ``1, 1, 1, 1``, ``dw, dh`` clipped at ``log(1000 / 16)``);
3. clip to the image (the resized, *unpadded* size);
4. drop boxes narrower or lower than ``min_size``, then scores (sigmoid) below ``score_thresh``;
5. NMS at ``nms_thresh`` **per level**: a box of one level never suppresses a box of another;
6. keep the first ``post_nms_top_n`` by score, over all levels.

Training uses larger N than inference. No gradient flows back through proposals: they are constants
for the RoI heads. :func:`proposals_by_level` returns every step's result, for notebooks;
:func:`select_proposals` returns the proposals only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..box_coder import BoxCoder
from ..boxes import batched_nms, clip_boxes_to_image, remove_small_boxes

__all__ = ["ProposalConfig", "ProposalRecord", "proposals_by_level", "select_proposals", "top_k"]


@dataclass(frozen=True)
class ProposalConfig:
    """Numbers of the proposal layer; the defaults are torchvision's for training (per level for
    ``pre_nms_top_n``, per image for ``post_nms_top_n``)."""

    pre_nms_top_n: int = 2000
    post_nms_top_n: int = 2000
    nms_thresh: float = 0.7
    min_size: float = 1e-3
    score_thresh: float = 0.0


class ProposalRecord(NamedTuple):
    """What the proposal layer did to one image. ``R`` proposals come out; level ``l`` had ``k_l``
    top-k candidates. Boxes are ``x1, y1, x2, y2`` in the (resized) image's pixels."""

    boxes: np.ndarray  # (R, 4) float32, by decreasing score
    scores: np.ndarray  # (R,) float32 objectness probabilities
    levels: np.ndarray  # (R,) int64 level of each proposal, 0..L-1
    candidates: tuple[np.ndarray, ...]  # per level, (k_l, 4) top-k boxes, decoded and clipped
    candidate_scores: tuple[np.ndarray, ...]  # per level, (k_l,) their probabilities
    survivors: tuple[np.ndarray, ...]  # per level, (s_l,) int64 rows of ``candidates[l]`` that
    # pass the size and score filters and the level's NMS (before the post_nms_top_n cut)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, in a **stable** descending order: equal values keep
    increasing index order, exactly ``np.argsort(-values, kind="stable")[:k]``.

    ``np.argpartition`` finds the ``k``-th largest value ``v`` without a full sort; everything above
    ``v`` is in, and of the values equal to ``v`` the lowest indices fill the rest; only the ``k``
    chosen are sorted. (torch's ``topk`` orders ties in an unspecified way, so at a tie on the cut
    the two libraries may pick different anchors.)

    Args:
        values: ``(A,)`` finite floats.
        k: how many, ``0 <= k``; ``k >= A`` returns all ``A``.

    Returns:
        ``(min(k, A),)`` int64 indices.
    """
    n = len(values)
    if k >= n:
        chosen = np.arange(n)
    elif k <= 0:
        return np.zeros(0, np.int64)
    else:
        kth = values[np.argpartition(-values, k - 1)[k - 1]]  # the k-th largest value
        above = np.flatnonzero(values > kth)
        ties = np.flatnonzero(values == kth)[: k - len(above)]
        chosen = np.sort(np.concatenate([above, ties]))
    return chosen[np.argsort(-values[chosen], kind="stable")].astype(np.int64)


def _check_levels(num_anchors_per_level, total: int) -> list[int]:
    if num_anchors_per_level is None:
        return [total]
    try:
        sizes = [int(n) for n in num_anchors_per_level]
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"num_anchors_per_level must be a sequence of ints; got {num_anchors_per_level!r}"
        ) from err
    if not sizes or min(sizes) < 0 or sum(sizes) != total:
        raise ValueError(
            f"num_anchors_per_level must be non-negative ints summing to the {total} anchors; "
            f"got {sizes}"
        )
    return sizes


def proposals_by_level(
    objectness,
    deltas,
    anchors,
    image_size,
    num_anchors_per_level: Sequence[int] | None = None,
    config: ProposalConfig = ProposalConfig(),
    box_coder: BoxCoder | None = None,
) -> ProposalRecord:
    """Proposals of one image, with the top-k candidates and NMS survivors of every level.

    Args:
        objectness: ``(A_total,)`` float logits, one per anchor, levels concatenated in order.
        deltas: ``(A_total, 4)`` predicted deltas ``dx, dy, dw, dh``, one set per anchor.
        anchors: ``(A_total, 4)`` anchors ``x1, y1, x2, y2`` in image pixels, same order.
        image_size: ``(H, W)`` the boxes are clipped to: the resized image *before* padding.
        num_anchors_per_level: anchors of each level, summing to ``A_total``; ``None`` is one level.
        config: the numbers; see :class:`ProposalConfig`.
        box_coder: defaults to ``BoxCoder((1, 1, 1, 1))``, torchvision's RPN coder.

    Returns:
        :class:`ProposalRecord`; zero anchors give empty arrays of the right shapes.
    """
    objectness = np.asarray(objectness, dtype=np.float32).reshape(-1)
    deltas = np.asarray(deltas, dtype=np.float32).reshape(-1, 4)
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
    if not len(objectness) == len(deltas) == len(anchors):
        raise ValueError(
            f"objectness, deltas and anchors must have one row per anchor; got {len(objectness)}, "
            f"{len(deltas)} and {len(anchors)}"
        )
    if not np.all(np.isfinite(objectness)):
        raise ValueError("objectness must be finite logits")
    sizes = _check_levels(num_anchors_per_level, len(objectness))
    coder = box_coder or BoxCoder((1.0, 1.0, 1.0, 1.0))

    # 1. top-k per level, on the raw logits (the sigmoid is monotone: it would not change the order)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    top = [
        starts[lv] + top_k(objectness[starts[lv] : starts[lv + 1]], config.pre_nms_top_n)
        for lv in range(len(sizes))
    ]
    counts = [len(t) for t in top]
    top = np.concatenate(top)
    level = np.repeat(np.arange(len(sizes), dtype=np.int64), counts)  # (k,) level of each candidate
    # 2-3. decode only the candidates (the same values as decoding all anchors), clip to the image
    boxes = clip_boxes_to_image(coder.decode_single(deltas[top], anchors[top]), image_size)
    boxes = boxes.astype(np.float32, copy=False)
    scores = _sigmoid(objectness[top]).astype(np.float32)
    # 4. small boxes, then low scores (">=" as torchvision, for backward compatibility)
    keep = remove_small_boxes(boxes, config.min_size)
    keep = keep[scores[keep] >= config.score_thresh]
    # 5. NMS by level: indices into the candidates, by decreasing score
    keep = keep[batched_nms(boxes[keep], scores[keep], level[keep], config.nms_thresh)]
    # 6. the best post_nms_top_n over all levels
    final = keep[: config.post_nms_top_n]

    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    per_level = [slice(offsets[lv], offsets[lv + 1]) for lv in range(len(sizes))]
    survivors = tuple(
        np.sort(keep[level[keep] == lv]) - offsets[lv] for lv in range(len(sizes))
    )  # row order inside the level's candidates
    return ProposalRecord(
        boxes=boxes[final],
        scores=scores[final],
        levels=level[final],
        candidates=tuple(boxes[s] for s in per_level),
        candidate_scores=tuple(scores[s] for s in per_level),
        survivors=survivors,
    )


def select_proposals(
    objectness,
    deltas,
    anchors,
    image_size,
    config: ProposalConfig = ProposalConfig(),
    box_coder: BoxCoder | None = None,
    *,
    num_anchors_per_level: Sequence[int] | None = None,
    return_levels: bool = False,
):
    """Proposals of one image (see :func:`proposals_by_level` for the arguments).

    Args:
        objectness: ``(A_total,)`` logits, one per anchor.
        deltas: ``(A_total, 4)`` predicted deltas, one set per anchor.
        anchors: ``(A_total, 4)`` anchors ``x1, y1, x2, y2`` in image pixels.
        image_size: ``(H, W)`` to clip to (resized, unpadded).
        config: the numbers; see :class:`ProposalConfig`.
        box_coder: defaults to ``BoxCoder((1, 1, 1, 1))``.
        num_anchors_per_level: anchors per pyramid level (top-k and NMS per level); ``None`` is one
            level.
        return_levels: also return each proposal's level.

    Returns:
        ``(boxes (R, 4) float32, scores (R,) float32)``, sorted by decreasing objectness probability
        (ties: lower candidate index first); with ``return_levels``, also ``levels (R,) int64``.
    """
    record = proposals_by_level(
        objectness, deltas, anchors, image_size, num_anchors_per_level, config, box_coder
    )
    if return_levels:
        return record.boxes, record.scores, record.levels
    return record.boxes, record.scores
