"""AP by size (``area_range="small" | "medium" | "large"``, COCO's ranges on the *mask* area of the
ground truth, bounds inclusive): a ground truth outside the range is *ignored*, not removed. A
detection prefers the best free ground truth inside the range, and takes an ignored one only when no
ground truth inside qualifies; a detection matched to an ignored ground truth, or unmatched with its
own area outside the range (its mask's pixels, or its box's ``w h`` for boxes), counts neither as a
true nor as a false positive. The RPN's recall (:func:`proposal_recall`) is ``COCOeval`` with
``useCats=0`` on the proposals in their order: the fraction of ground truths (in the range) that the
first ``n`` proposals match one to one at IoU ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..boxes import box_iou
from ..conventions import as_boxes
from .coco import (
    AREA_RANGES,
    EvaluationResult,
    _areas,
    evaluate_detections,
    match_detections_with_ignore,
)

__all__ = ["object_areas", "evaluate_by_size", "proposal_recall"]


def evaluate_by_size(
    predictions: Sequence[dict], targets: Sequence[dict], iou_type: str = "bbox", **kwargs
) -> dict[str, EvaluationResult]:
    """:func:`evaluate_detections` for each of COCO's area ranges: ``{"all", "small", "medium",
    "large"}`` -> :class:`EvaluationResult` (same keywords)."""
    return {
        name: evaluate_detections(predictions, targets, iou_type, area_range=name, **kwargs)
        for name in AREA_RANGES
    }


def proposal_recall(
    proposals: Sequence,
    targets: Sequence[dict],
    top_n: Sequence[int] = (100, 300, 1000),
    iou_thresholds: Sequence[float] = (0.5, 0.7),
) -> dict[str, dict[int, dict[float, float]]]:
    """The RPN's recall by object size: ``COCOeval`` with ``useCats=0`` and ``maxDets = n``.

    Args:
        proposals: per image, ``(R, 4)`` boxes ``x1, y1, x2, y2`` in image pixels, best first.
        targets: per image, ``"boxes"`` ``(G, 4)`` and optionally ``"masks"`` ``(G, H, W)``
            (sizes are mask areas; box areas without masks). Classes are not used.
        top_n: how many of the first proposals each recall uses.
        iou_thresholds: box IoU at which a proposal matches a ground truth (one to one, greedy in
            the proposals' order, as ``COCOeval``).

    Returns:
        ``{area name: {n: {t: recall}}}`` for ``"all", "small", "medium", "large"``; ``nan`` for a
        range without ground truth.
    """
    if len(proposals) != len(targets):
        raise ValueError(
            f"proposals and targets must have one entry per image; got {len(proposals)} and "
            f"{len(targets)}"
        )
    top_n = [int(n) for n in top_n]
    if not top_n or min(top_n) < 1:
        raise ValueError(f"top_n must list ints >= 1; got {top_n}")
    thr = np.asarray(iou_thresholds, np.float64)
    found = {a: {n: np.zeros(len(thr)) for n in top_n} for a in AREA_RANGES}
    total = dict.fromkeys(AREA_RANGES, 0)
    for i, (props, target) in enumerate(zip(proposals, targets, strict=True)):
        props = as_boxes(props, f"proposals[{i}]", dtype=np.float64)
        if not isinstance(target, dict) or "boxes" not in target:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes'")
        gt = as_boxes(target["boxes"], f"targets[{i}]['boxes']", dtype=np.float64)
        gt_area = _areas(target, gt)
        iou = box_iou(props[: max(top_n)], gt)  # (R, G)
        for name, (low, high) in AREA_RANGES.items():
            gt_ignore = (gt_area < low) | (gt_area > high)
            total[name] += int((~gt_ignore).sum())
            for n in top_n:
                m, ign = match_detections_with_ignore(iou[:n], gt_ignore, thr)
                hits = (m >= 0) & ~ign  # (T, n): matched to a ground truth in the range
                found[name][n] += hits.sum(axis=1)
    return {
        name: {
            n: {float(t): (found[name][n][j] / total[name] if total[name] else float("nan"))
                for j, t in enumerate(thr)}
            for n in top_n
        }
        for name in AREA_RANGES
    }  # fmt: skip


def object_areas(targets) -> np.ndarray:
    """COCO's size of every object of ``targets``, what :data:`AREA_RANGES` sorts: mask pixels, or
    box ``w h`` for a target without masks.

    Args:
        targets: dicts with ``"boxes"`` ``(G, 4)`` (image pixels) and optionally ``"masks"``
            ``(G, H, W)`` bool.

    Returns:
        ``(sum G,)`` float64 areas in pixels, the targets' objects in order.
    """
    areas = []
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes'")
        boxes = as_boxes(t["boxes"], f"targets[{i}]['boxes']", dtype=np.float64)
        shape = np.shape(t["masks"]) if "masks" in t else None
        if shape is not None and (len(shape) != 3 or shape[0] != len(boxes)):
            raise ValueError(
                f"targets[{i}]['masks'] must have shape ({len(boxes)}, H, W); got {shape}"
            )
        areas.append(_areas(t, boxes))
    return np.concatenate(areas) if areas else np.zeros(0)
