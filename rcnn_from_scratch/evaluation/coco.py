"""COCO-style average precision for boxes and masks, with pycocotools' ``COCOeval`` semantics.

The recipe, per class (area range "all", no crowd regions):

1. Per image, the detections of the class are sorted by score (stable) and cut to the best
   ``max_dets``. As in ``COCOeval``, this limit applies per image *and class*.
2. Matching, per IoU threshold ``t`` in ``0.50, 0.55, ..., 0.95``: detections are visited in
   descending score order; each takes, among the ground truths not yet taken at that threshold, the
   one with the highest IoU, provided that IoU is ``>= t`` (ties go to the later ground truth, as in
   ``COCOeval``). Each ground truth is matched at most once; an unmatched detection is a false positive.
3. The detections of all images are ranked by score (stable, images in order); cumulative true and
   false positives give precision and recall after each detection.
4. The precision curve is made monotone (each value becomes the best precision at any higher recall),
   then read at the 101 recall points ``0, 0.01, ..., 1``: the precision at the first rank whose recall
   reaches the point, 0 if recall never reaches it. AP is the mean of the 101 values.

AP@0.5 and AP@0.75 use one threshold, mAP the mean over the ten. A class with no ground truth in any
image has no AP (``COCOeval`` writes -1; here ``nan``) and is left out of the means over classes.

AP by size (``area_range="small" | "medium" | "large"``, COCO's ranges on the *mask* area of the
ground truth, bounds inclusive) ignores a ground truth outside the range rather than removing it;
``by_size.py`` has the rule, AP for every range at once and the RPN's recall.

Box IoU is the package's ``box_iou`` (width ``x2 - x1``, no +1: what COCO computes from ``x, y, w, h``);
mask IoU counts pixels of ``(H, W)`` bool masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..boxes import box_iou
from ..conventions import as_boxes, as_scores

__all__ = [
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "EvaluationResult",
    "evaluate_detections",
    "mask_iou",
    "match_detections",
    "match_detections_reference",
    "match_detections_with_ignore",
    "AREA_RANGES",
    "average_precision",
    "format_results",
]

# the same expressions as pycocotools' Params, so the floats are identical
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
# COCO's area ranges in pixels, bounds inclusive (pycocotools' Params.areaRng)
AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}


def mask_iou(masks1, masks2) -> np.ndarray:
    """IoU of every mask of ``masks1`` ``(D, H, W)`` with every mask of ``masks2`` ``(G, H, W)``.

    Masks are bool (any non-zero integer counts as inside). Intersections come from one matrix
    product of the flattened masks in float32 (exact for up to 2^24 pixels per image). Returns
    ``(D, G)`` float64; two empty masks have IoU 0.
    """
    a, b = _as_masks(masks1, "masks1"), _as_masks(masks2, "masks2")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"masks1 and masks2 must have the same (H, W); got {a.shape} and {b.shape}"
        )
    pixels = a.shape[1] * a.shape[2]
    fa = a.reshape(len(a), pixels).astype(np.float32)  # (D, H*W)
    fb = b.reshape(len(b), pixels).astype(np.float32)  # (G, H*W)
    inter = (fa @ fb.T).astype(np.float64)  # (D, G)
    union = fa.sum(1, dtype=np.float64)[:, None] + fb.sum(1, dtype=np.float64)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_detections(iou, iou_thresholds=IOU_THRESHOLDS) -> np.ndarray:
    """Greedy COCO matching of detections, already sorted by descending score, to ground truths.

    Args:
        iou: ``(D, G)`` IoU of each detection (rows in descending score order) with each ground truth.
        iou_thresholds: ``(T,)`` thresholds.

    Returns:
        ``(T, D)`` int64: the index of the ground truth each detection matches at each threshold, or
        -1 (a false positive). One loop over detections does the work of all thresholds at once.
    """
    iou = np.asarray(iou, dtype=np.float64)
    thr = np.minimum(np.asarray(iou_thresholds, np.float64), 1 - 1e-10)  # as COCOeval
    num_d, num_g = iou.shape
    matches = np.full((len(thr), num_d), -1, np.int64)
    if num_g == 0:
        return matches
    taken = np.zeros((len(thr), num_g), bool)
    rows = np.arange(len(thr))
    for d in np.flatnonzero(iou.max(axis=1) >= thr.min()):  # others match nothing anywhere
        ok = (iou[d][None, :] >= thr[:, None]) & ~taken  # (T, G)
        score = np.where(ok, iou[d][None, :], -1.0)
        # the last maximum wins ties, as COCOeval's `if iou < best: continue` does
        best = num_g - 1 - np.argmax(score[:, ::-1], axis=1)  # (T,)
        hit = ok[rows, best]
        matches[hit, d] = best[hit]
        taken[rows[hit], best[hit]] = True
    return matches


def match_detections_reference(iou, iou_thresholds=IOU_THRESHOLDS) -> np.ndarray:
    """:func:`match_detections` written as ``COCOeval.evaluateImg`` reads: three nested loops."""
    iou = np.asarray(iou, dtype=np.float64)
    num_d, num_g = iou.shape
    matches = np.full((len(iou_thresholds), num_d), -1, np.int64)
    for t, threshold in enumerate(iou_thresholds):
        taken = [False] * num_g
        for d in range(num_d):
            best, m = min(threshold, 1 - 1e-10), -1
            for g in range(num_g):
                if taken[g] or iou[d, g] < best:
                    continue
                best, m = iou[d, g], g
            if m >= 0:
                taken[m] = True
                matches[t, d] = m
    return matches


def match_detections_with_ignore(iou, gt_ignore, iou_thresholds=IOU_THRESHOLDS):
    """:func:`match_detections` when some ground truths are ignored (outside the area range).

    ``COCOeval`` visits the ground truths with the kept ones first and stops at the first ignored
    one once a kept one is matched: a detection takes the best free kept ground truth at IoU
    ``>= t`` if there is one, else the best free ignored one (ties: the later index, as before).

    Args:
        iou: ``(D, G)`` IoU, detections in descending score order.
        gt_ignore: ``(G,)`` bool, the ignored ground truths.

    Returns:
        ``(matches (T, D) int64, matched_ignored (T, D) bool)``: the ground truth each detection
        takes (-1 for none), and whether that ground truth is an ignored one.
    """
    iou = np.asarray(iou, dtype=np.float64)
    ignore = np.asarray(gt_ignore, bool).reshape(-1)
    thr = np.minimum(np.asarray(iou_thresholds, np.float64), 1 - 1e-10)
    num_d, num_g = iou.shape
    if ignore.shape != (num_g,):
        raise ValueError(f"gt_ignore must have shape ({num_g},); got {ignore.shape}")
    matches = np.full((len(thr), num_d), -1, np.int64)
    if num_g == 0:
        return matches, np.zeros(matches.shape, bool)
    taken = np.zeros((len(thr), num_g), bool)
    rows = np.arange(len(thr))
    for d in np.flatnonzero(iou.max(axis=1) >= thr.min()):
        ok = (iou[d][None, :] >= thr[:, None]) & ~taken  # (T, G)
        choice = np.full(len(thr), -1, np.int64)
        for block in (~ignore, ignore):  # the kept ground truths first
            cand = ok & block[None, :]
            score = np.where(cand, iou[d][None, :], -1.0)
            best = num_g - 1 - np.argmax(score[:, ::-1], axis=1)  # the last maximum wins ties
            hit = (choice < 0) & cand[rows, best]
            choice[hit] = best[hit]
        hit = choice >= 0
        matches[hit, d] = choice[hit]
        taken[rows[hit], choice[hit]] = True
    matched_ignored = (matches >= 0) & ignore[np.maximum(matches, 0)]
    return matches, matched_ignored


def average_precision(scores, matched, num_gt: int, ignored=None) -> np.ndarray:
    """COCO's 101-point interpolated AP from the detections of one class over all images.

    Args:
        scores: ``(D,)`` scores of the detections, images concatenated in order.
        matched: ``(T, D)`` bool, whether each detection is a true positive at each threshold.
        num_gt: number of ground truths of the class (> 0).
        ignored: optional ``(T, D)`` bool, detections that count neither as true nor as false
            positives (by size: matched to an ignored ground truth, or outside the area range).

    Returns:
        ``(T, R)`` float64: the interpolated precision at each recall threshold (AP is its mean over R).
    """
    order = np.argsort(-np.asarray(scores), kind="mergesort")  # stable, as COCOeval
    kept = np.ones(matched.shape, bool) if ignored is None else ~np.asarray(ignored, bool)
    tp = np.cumsum((matched & kept)[:, order], axis=1, dtype=np.float64)  # (T, D)
    fp = np.cumsum((~matched & kept)[:, order], axis=1, dtype=np.float64)
    out = np.zeros((len(matched), len(RECALL_THRESHOLDS)))
    if len(order) == 0:
        return out
    recall = tp / num_gt
    with np.errstate(invalid="ignore"):  # ignored detections before any counted one: 0 / 0
        precision = np.nan_to_num(tp / (tp + fp))
    # the envelope: best precision at this rank or any later (higher-recall) one
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    for t in range(len(matched)):  # ten thresholds, whole-array work each
        idx = np.searchsorted(recall[t], RECALL_THRESHOLDS, side="left")
        reached = idx < len(order)
        out[t, reached] = envelope[t, idx[reached]]
    return out


@dataclass(frozen=True)
class EvaluationResult:
    """COCO-style AP of one evaluation.

    Attributes:
        iou_type: ``"bbox"`` or ``"segm"``.
        class_names: ``(K,)`` names of the classes 1..K.
        precision: ``(T, R, K)`` interpolated precision (T = 10 IoU thresholds, R = 101 recall
            points), -1 for a class without ground truth (``COCOeval.eval["precision"]``'s layout,
            area "all", one ``maxDets``).
        num_gt: ``(K,)`` ground truths per class.
    """

    iou_type: str
    class_names: tuple[str, ...]
    precision: np.ndarray
    num_gt: np.ndarray

    def _per_class(self, t: slice | int) -> np.ndarray:
        p = self.precision[t].reshape(-1, self.precision.shape[-1])  # (T' * R, K)
        ap = p.mean(axis=0)
        ap[self.num_gt == 0] = np.nan
        return ap

    @property
    def ap(self) -> np.ndarray:
        """``(K,)`` mAP over IoU 0.50:0.95 per class (nan without ground truth)."""
        return self._per_class(slice(None))

    @property
    def ap50(self) -> np.ndarray:
        """``(K,)`` AP at IoU 0.5 per class."""
        return self._per_class(0)

    @property
    def ap75(self) -> np.ndarray:
        """``(K,)`` AP at IoU 0.75 per class."""
        return self._per_class(5)

    @staticmethod
    def _mean(values: np.ndarray) -> float:
        present = values[~np.isnan(values)]
        return float(present.mean()) if present.size else float("nan")

    @property
    def map(self) -> float:
        """mAP@[.5:.95] averaged over the classes that have ground truth (nan if none has)."""
        return self._mean(self.ap)

    @property
    def map50(self) -> float:
        return self._mean(self.ap50)

    @property
    def map75(self) -> float:
        return self._mean(self.ap75)

    def as_dict(self) -> dict[str, float]:
        """``{"mAP": ..., "AP50": ..., "AP75": ..., "AP/<class>": ...}`` as plain floats."""
        out = {"mAP": self.map, "AP50": self.map50, "AP75": self.map75}
        out.update({f"AP/{n}": float(v) for n, v in zip(self.class_names, self.ap, strict=True)})
        return out

    def table(self) -> str:
        """A plain-text table: one row per class and the mean, columns mAP, AP50, AP75."""
        kind = "box" if self.iou_type == "bbox" else "mask"
        width = max(8, *(len(n) for n in self.class_names))
        lines = [
            f"{kind} AP (COCO: 101-point, IoU .50:.05:.95)",
            f"{'class':<{width}}  {'mAP':>6} {'AP50':>6} {'AP75':>6} {'gt':>6}",
        ]
        rows = zip(self.class_names, self.ap, self.ap50, self.ap75, self.num_gt, strict=True)
        for name, a, a50, a75, n in rows:
            lines.append(f"{name:<{width}}  {a:6.3f} {a50:6.3f} {a75:6.3f} {int(n):6d}")
        lines.append(
            f"{'mean':<{width}}  {self.map:6.3f} {self.map50:6.3f} {self.map75:6.3f} "
            f"{int(self.num_gt.sum()):6d}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def evaluate_detections(
    predictions: Sequence[dict],
    targets: Sequence[dict],
    iou_type: str = "bbox",
    num_classes: int = 3,
    max_dets: int = 100,
    class_names: Sequence[str] | None = None,
    area_range: str = "all",
) -> EvaluationResult:
    """COCO-style box or mask AP of detections against ground truth (see the module docstring).

    Args:
        predictions: one dict per image: ``"boxes"`` ``(D, 4)`` ``x1, y1, x2, y2`` pixels,
            ``"labels"`` ``(D,)`` ints in ``1..num_classes``, ``"scores"`` ``(D,)``, and for
            ``"segm"`` ``"masks"`` ``(D, H, W)`` bool (threshold probabilities first).
        targets: one dict per image, same order: ``"boxes"`` ``(G, 4)``, ``"labels"`` ``(G,)`` and
            for ``"segm"`` ``"masks"`` ``(G, H, W)`` bool.
        iou_type: ``"bbox"`` (box IoU) or ``"segm"`` (mask IoU).
        num_classes: K, the foreground classes ``1..K``.
        max_dets: detections kept per image and class, the best by score (COCO's ``maxDets``).
        class_names: K names for the table; default the shapes data set's when K = 3, else numbers.
        area_range: ``"all"``, ``"small"``, ``"medium"`` or ``"large"`` (:data:`AREA_RANGES`, on
            the ground truth's mask area; a target without masks uses its box area, as does a
            detection for ``"bbox"``).

    Returns:
        An :class:`EvaluationResult`. Images with no detections or no ground truth are normal.

    Raises:
        ValueError: different numbers of images, bad shapes, labels outside ``1..num_classes``,
            masks missing for ``"segm"``.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm'; got {iou_type!r}")
    if len(predictions) != len(targets):
        raise ValueError(
            f"predictions and targets must have one entry per image; got {len(predictions)} "
            f"and {len(targets)}"
        )
    if int(max_dets) < 1:
        raise ValueError(f"max_dets must be >= 1; got {max_dets}")
    if area_range not in AREA_RANGES:
        raise ValueError(f"area_range must be one of {sorted(AREA_RANGES)}; got {area_range!r}")
    low, high = AREA_RANGES[area_range]
    if class_names is None:
        class_names = _default_class_names(num_classes)
    if len(class_names) != num_classes:
        raise ValueError(f"class_names must hold {num_classes} names; got {len(class_names)}")
    scores = [[] for _ in range(num_classes)]  # per class: one (D_i,) array per image
    matched = [[] for _ in range(num_classes)]  # per class: one (T, D_i) array per image
    ignored = [[] for _ in range(num_classes)]  # per class: one (T, D_i) array per image
    num_gt = np.zeros(num_classes, np.int64)
    for n, (pred, target) in enumerate(zip(predictions, targets, strict=True)):
        p = _read(pred, f"predictions[{n}]", iou_type, num_classes, with_scores=True)
        g = _read(target, f"targets[{n}]", iou_type, num_classes, with_scores=False)
        gt_area = _areas(target, g["boxes"])
        dt_area = _areas(p if iou_type == "segm" else {}, p["boxes"])
        if iou_type == "segm" and len(p["masks"]) and len(g["masks"]):
            if p["masks"].shape[1:] != g["masks"].shape[1:]:
                raise ValueError(f"predictions[{n}] and targets[{n}] masks differ in (H, W)")
        for k in range(num_classes):
            gi = np.flatnonzero(g["labels"] == k + 1)
            di = np.flatnonzero(p["labels"] == k + 1)
            di = di[np.argsort(-p["scores"][di], kind="mergesort")][: int(max_dets)]
            gt_ignore = (gt_area[gi] < low) | (gt_area[gi] > high)
            num_gt[k] += int((~gt_ignore).sum())
            if iou_type == "bbox":
                iou = box_iou(p["boxes"][di].astype(np.float64), g["boxes"][gi].astype(np.float64))
            else:
                iou = mask_iou(p["masks"][di], g["masks"][gi])
            scores[k].append(p["scores"][di])
            if area_range == "all":
                m, ign = match_detections(iou), np.zeros((len(IOU_THRESHOLDS), len(di)), bool)
            else:
                m, ign = match_detections_with_ignore(iou, gt_ignore)
                outside = (dt_area[di] < low) | (dt_area[di] > high)
                ign |= (m < 0) & outside[None, :]  # unmatched and of another size
            matched[k].append(m >= 0)
            ignored[k].append(ign)
    num_r = len(RECALL_THRESHOLDS)
    precision = np.full((len(IOU_THRESHOLDS), num_r, num_classes), -1.0)
    for k in range(num_classes):
        if num_gt[k]:
            precision[:, :, k] = average_precision(
                np.concatenate(scores[k]), np.concatenate(matched[k], axis=1), int(num_gt[k]),
                np.concatenate(ignored[k], axis=1),
            )  # fmt: skip
    return EvaluationResult(iou_type, tuple(class_names), precision, num_gt)


def _areas(entry: dict, boxes: np.ndarray) -> np.ndarray:
    """Sizes for the area ranges: mask pixels when ``entry`` has masks, else box ``w h``."""
    if "masks" in entry and len(np.shape(entry["masks"])) == 3:
        return np.asarray(entry["masks"]).reshape(len(entry["masks"]), -1).sum(1).astype(float)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def format_results(*results: EvaluationResult) -> str:
    """The tables of several results (e.g. box and mask AP), one after the other."""
    return "\n\n".join(r.table() for r in results)


def _default_class_names(num_classes: int) -> tuple[str, ...]:
    from ..datasets.shapes import CLASS_NAMES

    if num_classes == len(CLASS_NAMES) - 1:
        return tuple(CLASS_NAMES[1:])
    return tuple(str(k) for k in range(1, num_classes + 1))


def _as_masks(masks, name: str) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W); got shape {arr.shape}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name} must be bool (threshold probabilities first, e.g. at 0.5); got {arr.dtype}"
        )
    return arr.astype(bool, copy=False)


def _read(entry: dict, name: str, iou_type: str, num_classes: int, with_scores: bool) -> dict:
    if not isinstance(entry, dict):
        raise ValueError(f"{name} must be a dict with boxes and labels; got {type(entry).__name__}")
    for key in ("boxes", "labels") + (("scores",) if with_scores else ()):
        if key not in entry:
            raise ValueError(f"{name} needs a {key!r} entry")
    boxes = as_boxes(entry["boxes"], f"{name}['boxes']")
    labels = np.asarray(entry["labels"]).reshape(-1)
    if labels.shape != (len(boxes),) or not (
        labels.size == 0 or np.issubdtype(labels.dtype, np.integer)
    ):
        raise ValueError(f"{name}['labels'] must be ({len(boxes)},) integers; got {labels.shape}")
    if labels.size and (labels.min() < 1 or labels.max() > num_classes):
        raise ValueError(
            f"{name}['labels'] must lie in 1..{num_classes}; got {labels.min()}..{labels.max()}"
        )
    out = {"boxes": boxes, "labels": labels.astype(np.int64)}
    if with_scores:
        out["scores"] = as_scores(entry["scores"], len(boxes), f"{name}['scores']")
    if iou_type == "segm":
        if "masks" not in entry:
            raise ValueError(f"{name} needs 'masks' (N, H, W) bool for iou_type='segm'")
        masks = _as_masks(entry["masks"], f"{name}['masks']")
        if len(masks) != len(boxes):
            raise ValueError(f"{name}['masks'] holds {len(masks)} masks for {len(boxes)} boxes")
        out["masks"] = masks
    return out
