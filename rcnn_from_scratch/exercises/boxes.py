"""Exercises on boxes: area, IoU, NMS, the box encoding and its inverse, anchors."""

from __future__ import annotations

import math

import numpy as np

from ..box_coder import BoxCoder
from ..boxes import box_area, box_iou, nms
from ..proposals.anchors import AnchorGenerator
from .checker import Case, Exercise

__all__ = ["EXERCISES", "encode_boxes", "decode_boxes", "generate_anchors"]

FRAME = (
    "Boxes are float (N, 4) arrays x1, y1, x2, y2 in continuous pixel coordinates: pixel (row i, "
    "col j) covers [j, j+1) x [i, i+1), so a box's width is x2 - x1 (no +1)."
)


def _b(*rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def random_boxes(rng: np.random.Generator, n: int, extent: float = 20.0) -> np.ndarray:
    """``(n, 4)`` float64 boxes with positive width and height inside ``[0, extent + 10]``."""
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(0.5, 10, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def encode_boxes(reference_boxes, proposals, weights):
    """The deltas that move each proposal onto its reference box (torchvision's ``encode_boxes``).

    Args:
        reference_boxes: ``(N, 4)`` target boxes ``x1, y1, x2, y2``, positive sizes.
        proposals: ``(N, 4)`` the boxes the deltas are relative to.
        weights: ``(wx, wy, ww, wh)``.

    Returns:
        ``(N, 4)`` float deltas ``dx, dy, dw, dh``: ``BoxCoder(weights).encode_single``.
    """
    return BoxCoder(weights).encode_single(reference_boxes, proposals)


def decode_boxes(rel_codes, boxes, weights):
    """Deltas applied to boxes (``BoxCoder(weights).decode_single``), ``dw, dh`` clamped at
    ``log(1000 / 16)``.

    Args:
        rel_codes: ``(N, 4 C)`` deltas, ``C`` sets of ``dx, dy, dw, dh`` per box.
        boxes: ``(N, 4)`` reference boxes ``x1, y1, x2, y2``.
        weights: ``(wx, wy, ww, wh)``.

    Returns:
        ``(N, 4 C)`` float boxes ``x1, y1, x2, y2``.
    """
    return BoxCoder(weights).decode_single(rel_codes, boxes)


def generate_anchors(scales, aspect_ratios):
    """Base anchors centred on 0 (``AnchorGenerator.generate_anchors``).

    Args:
        scales: ``S`` anchor sizes (square roots of the areas) in pixels.
        aspect_ratios: ``R`` ratios height / width.

    Returns:
        ``(R * S, 4)`` float32 ``[-w, -h, w, h] / 2`` rounded to whole pixels, ratio-major (for each
        ratio, every scale), with ``h = sqrt(r) * size`` and ``w = size / sqrt(r)``.
    """
    return AnchorGenerator.generate_anchors(scales, aspect_ratios)


# ---------------------------------------------------------------- box_area


def _area_cases():
    width = "width is x2 - x1 and height y2 - y1, no +1"
    return [
        Case("one box 2 wide and 3 high has area 6", (_b([0, 0, 2, 3]),), hint=width,
             also=((np.array([12.0]), "your area counts an extra pixel per side: is your width "
                                      "x2 - x1 + 1? In continuous coordinates it is x2 - x1."),
                   (np.array([4.0]), "the height is y2 - y1, not x2 - x1"),
                   (np.array([9.0]), "the width is x2 - x1, not y2 - y1"))),
        Case("a box away from the origin: [3, 1, 7, 2] has area 4", (_b([3, 1, 7, 2]),),
             hint="width x2 - x1, height y2 - y1: subtract the corners, not just take x2 * y2"),
        Case("a zero-width box has area 0", (_b([1, 1, 1, 5]),), hint=width),
        Case("several boxes give one area each, shape (N,)",
             (_b([0, 0, 1, 1], [0, 0, 2, 2], [1, 2, 4, 6]),),
             hint="return a flat (N,) array, one area per box (not (N, 1))", shape_rule=True),
        Case("no boxes: shape (0,)", (np.zeros((0, 4)),),
             hint="an empty (0, 4) input gives an empty (0,) result", shape_rule=True),
    ]  # fmt: skip


def _area_random(rng):
    return Case("random boxes", (random_boxes(rng, int(rng.integers(1, 8))),), hint="x2 - x1")


# ---------------------------------------------------------------- box_iou


def _iou_cases():
    plus_one = (
        "touching boxes should have IoU 0: is your width x2 - x1 + 1? In continuous coordinates "
        "the width is x2 - x1."
    )
    return [
        Case("a box with itself has IoU 1", (_b([0, 0, 2, 2]), _b([0, 0, 2, 2])),
             hint="IoU = intersection / union; for identical boxes both are the box's area",
             also=((np.array([[0.5]]), "union = area1 + area2 - intersection: the overlap is "
                                       "counted twice in area1 + area2, subtract it once"),)),
        Case("overlapping boxes [0,0,3,2] and [1,0,6,2]: IoU 4 / (6 + 10 - 4) = 1/3",
             (_b([0, 0, 3, 2]), _b([1, 0, 6, 2])),
             hint="IoU = inter / (area1 + area2 - inter): the union counts the overlap once",
             also=((np.array([[2 / 3]]), "union = area1 + area2 - intersection: you divided by "
                                         "the area of one box"),
                   (np.array([[0.4]]), "union = area1 + area2 - intersection: you divided by "
                                       "the area of one box"),
                   (np.array([[0.25]]), "union = area1 + area2 - intersection: the overlap is "
                                        "counted twice in area1 + area2, subtract it once"),
                   (np.array([[9 / 21]]), plus_one),
                   (np.array([[5 / 3]]), "the intersection runs from the larger x1 to the "
                                         "smaller x2 (and likewise y)"))),
        Case("touching boxes (sharing an edge) have IoU 0", (_b([0, 0, 2, 2]), _b([2, 0, 4, 2])),
             hint=plus_one),
        Case("boxes apart in x and in y have IoU 0", (_b([0, 0, 1, 1]), _b([3, 3, 4, 4])),
             hint="clamp the intersection's width and height at 0 separately: two negative "
                  "sides multiply to a positive 'intersection'"),
        Case("a box inside another: IoU = small area / big area",
             (_b([0, 0, 4, 4]), _b([1, 1, 2, 3])),
             hint="the intersection runs from the larger x1 to the smaller x2 (and likewise y)"),
        Case("every pair: 2 boxes against 3 give a (2, 3) matrix, row i = boxes1[i]",
             (_b([0, 0, 2, 2], [1, 1, 3, 3]), _b([0, 0, 2, 2], [1, 0, 3, 2], [5, 5, 6, 6])),
             hint="entry (i, j) is the IoU of boxes1[i] with boxes2[j]: broadcast boxes1[:, None] "
                  "against boxes2[None, :]", shape_rule=True),
        Case("two zero-area boxes have IoU 0, not NaN", (_b([1, 1, 1, 1]), _b([1, 1, 1, 1])),
             hint="when the union is 0 the intersection is 0 too: return 0, not 0 / 0 = NaN"),
        Case("no boxes on one side: shape (0, 2)",
             (np.zeros((0, 4)), _b([0, 0, 1, 1], [0, 0, 2, 2])),
             hint="an empty boxes1 gives an empty (0, M) matrix", shape_rule=True),
    ]  # fmt: skip


def _iou_random(rng):
    return Case(
        "random boxes",
        (random_boxes(rng, int(rng.integers(1, 6))), random_boxes(rng, int(rng.integers(1, 6)))),
        hint="check the intersection's corners and the (N, M) broadcasting",
    )


# ---------------------------------------------------------------- nms


def _nms_cases():
    sort = "visit boxes by descending score: the best box is kept first and suppresses the others"
    two = _b([0, 0, 4, 4], [0, 0, 4, 3.9])  # IoU 0.975
    at_threshold = _b([0, 0, 2, 2], [1, 0, 3, 2])  # IoU exactly 1/3
    chain = _b([0, 0, 4, 4], [2, 0, 6, 4], [4, 0, 8, 4])  # A-B 1/3, B-C 1/3, A-C 0
    return [
        Case("one box is kept", (_b([0, 0, 1, 1]), np.array([0.5]), 0.5),
             hint="return the indices of the kept boxes, an int array", shape_rule=True),
        Case("two far-apart boxes are both kept, best score first",
             (_b([0, 0, 1, 1], [5, 5, 6, 6]), np.array([0.2, 0.9]), 0.5),
             hint="visit and return the boxes by descending score (here [1, 0]), not in index "
                  "order"),
        Case("of two overlapping boxes the higher-scored one is kept",
             (two, np.array([0.3, 0.8]), 0.5), hint=sort,
             also=((np.array([0]), sort + "; you kept the first box, not the best one"),)),
        Case("touching boxes do not suppress each other (threshold 0.1)",
             (_b([0, 0, 2, 2], [2, 0, 4, 2]), np.array([0.9, 0.8]), 0.1),
             hint="touching boxes should have IoU 0: is your width x2 - x1 + 1? In continuous "
                  "coordinates it is x2 - x1"),
        Case("a pair whose IoU equals the threshold both survive",
             (at_threshold, np.array([0.9, 0.8]), 1.0 / 3.0),
             hint="NMS keeps a box whose IoU equals the threshold: suppression is IoU > threshold, "
                  "not >="),
        Case("a suppressed box suppresses nothing: A kills B, so C survives",
             (chain, np.array([0.9, 0.8, 0.7]), 0.3),
             hint="compare each box only with boxes already KEPT; a suppressed box must not "
                  "suppress others (greedy NMS)"),
        Case("equal scores: the lower index comes first",
             (_b([0, 0, 1, 1], [5, 5, 6, 6]), np.array([0.5, 0.5]), 0.5),
             hint="sort by -score with a stable sort (np.argsort(-scores, kind='stable')); "
                  "argsort(scores)[::-1] puts the higher index first on ties"),
        Case("no boxes: an empty int array", (np.zeros((0, 4)), np.zeros(0), 0.5),
             hint="return np.zeros(0, dtype=np.int64) when there are no boxes", shape_rule=True),
    ]  # fmt: skip


def _nms_random(rng):
    n = int(rng.integers(2, 15))
    boxes = random_boxes(rng, n, extent=8.0)
    return Case(
        "random overlapping boxes",
        (boxes, rng.permutation(n).astype(np.float64) / n, float(rng.choice([0.1, 0.3, 0.5, 0.7]))),
        hint="greedy NMS by descending score; suppress only when IoU > threshold",
    )


# ---------------------------------------------------------------- encode_boxes / decode_boxes

_ONES = (1.0, 1.0, 1.0, 1.0)
_HEAD = (10.0, 10.0, 5.0, 5.0)


def _encode_cases():
    p = _b([0, 0, 10, 10])
    return [
        Case("a proposal equal to its box needs no change: zeros", (p, p, _ONES),
             hint="dx = wx (gx - px) / pw, dw = ww log(gw / pw): all 0 when the boxes coincide",
             also=((np.array([[0.0, 0, 1, 1]]), "dw is the LOG of the ratio: log(gw / pw), 0 for "
                                                "equal widths"),)),
        Case("moving right by half a width: dx = 0.5", (_b([5, 0, 15, 10]), p, _ONES),
             hint="dx is the shift of the centres divided by the PROPOSAL's width: (gx - px) / pw",
             also=((np.array([[5.0, 0, 0, 0]]), "divide the shift by the proposal's width: the "
                                                "deltas do not depend on the image's scale"),
                   (np.array([[-0.5, 0, 0, 0]]), "the deltas move the proposal onto the reference "
                    "box: (gx - px) / pw; you swapped the two arguments (reference_boxes first)"))),
        Case("twice as wide, same left edge: dx = 0.5, dw = log 2",
             (_b([0, 0, 20, 10]), p, _ONES),
             hint="compare the centres (x1 + w / 2), not the corners; dw = log(gw / pw)",
             also=((np.array([[0.0, 0, math.log(2), 0]]),
                    "dx compares the centres x1 + w / 2, not the left edges"),
                   (np.array([[0.5, 0, 2.0, 0]]), "dw is the LOG of the ratio: log(gw / pw)"),
                   (np.array([[0.5, 0, 1.0, 0]]), "dw is the log of the ratio: log(gw / pw), "
                                                  "not the difference over pw"))),
        Case("the box head's weights (10, 10, 5, 5) multiply the deltas",
             (_b([5, 0, 25, 10]), p, _HEAD),
             hint="multiply: dx = wx (gx - px) / pw, dw = ww log(gw / pw)"),
        Case("x and y are separate: a shift down moves dy only",
             (_b([0, 4, 10, 24]), _b([0, 0, 10, 20]), (1.0, 2.0, 3.0, 4.0)),
             hint="dy uses the heights and wy; dh = wh log(gh / ph)"),
        Case("several boxes: shape (N, 4)", (_b([0, 0, 2, 2], [1, 1, 5, 3]),
                                             _b([0, 0, 1, 1], [2, 2, 4, 4]), _ONES),
             hint="one row of deltas per (reference box, proposal) pair", shape_rule=True),
    ]  # fmt: skip


def _encode_random(rng):
    n = int(rng.integers(1, 6))
    w = tuple(float(v) for v in rng.choice([1.0, 2.0, 5.0, 10.0], 4))
    return Case("random boxes", (random_boxes(rng, n), random_boxes(rng, n), w), hint="")


def _decode_cases():
    p = _b([0, 0, 10, 10])
    clip = math.log(1000.0 / 16)
    return [
        Case("zero deltas leave the box as it is", (np.zeros((1, 4)), p, _ONES),
             hint="x1 = cx - w / 2 with cx = px + dx pw and w = pw exp(dw)"),
        Case("dx = 0.5 moves the box right by half its width",
             (np.array([[0.5, 0, 0, 0]]), p, _ONES),
             hint="the new centre is px + dx * pw (the shift is relative to the box's width)"),
        Case("dw = log 2 doubles the width about the centre",
             (np.array([[0, 0, math.log(2), 0]]), p, _ONES),
             hint="new width pw * exp(dw), placed about the centre: x1 = cx - w / 2, x2 = cx + w / 2",
             also=((_b([0, 0, 20, 10]), "the width grows about the box's CENTRE, not its left "
                                        "edge: x1 = cx - w / 2"),)),
        Case("weights (10, 10, 5, 5): the deltas are divided by them first",
             (np.array([[5.0, 0, 5 * math.log(2), 0]]), p, _HEAD),
             hint="decode undoes encode: dx = rel_codes[:, 0] / wx, dw = rel_codes[:, 2] / ww"),
        Case("a huge dw is clamped at log(1000 / 16) before exp",
             (np.array([[0, 0, 10.0, 0]]), p, _ONES),
             hint=f"clamp dw and dh at log(1000 / 16) = {clip:.4f} before exp (torchvision's "
                  "bbox_xform_clip), so that a wild prediction cannot blow up"),
        Case("only the upper side is clamped: dw = -10 is used as it is",
             (np.array([[0, 0, -10.0, 0]]), p, _ONES),
             hint="clamp only from above, np.minimum(dw, log(1000 / 16)); small boxes are legal"),
        Case("several sets per box: rel_codes (N, 4 C) gives (N, 4 C) boxes",
             (np.array([[0, 0, 0, 0, 0.5, 0, 0, 0]]), p, _ONES),
             hint="rel_codes holds C sets of (dx, dy, dw, dh) per box: read dx as "
                  "rel_codes[:, 0::4], dy as rel_codes[:, 1::4], ...", shape_rule=True),
    ]  # fmt: skip


def _decode_random(rng):
    n, c = int(rng.integers(1, 5)), int(rng.integers(1, 3))
    w = tuple(float(v) for v in rng.choice([1.0, 2.0, 5.0, 10.0], 4))
    return Case("random deltas", (rng.normal(0, 1, (n, 4 * c)), random_boxes(rng, n), w), hint="")


# ---------------------------------------------------------------- generate_anchors


def _anchor_cases():
    return [
        Case("size 32, ratio 1: a 32 x 32 square centred on 0", ((32,), (1.0,)),
             hint="the base anchors are centred on 0: [-w/2, -h/2, w/2, h/2]",
             also=((np.array([[0, 0, 32, 32]], np.float32),
                    "centre the anchor on 0: [-w/2, -h/2, w/2, h/2], not [0, 0, w, h]"),)),
        Case("size 32, ratio 2: a tall anchor (ratio = height / width)", ((32,), (2.0,)),
             hint="keep the area size^2: h = size * sqrt(r), w = size / sqrt(r)",
             also=((np.array([[-23, -11, 23, 11]], np.float32),
                    "torchvision's aspect ratio is height / width (d2l's is width / height): "
                    "ratio 2 is a TALL anchor"),
                   (np.array([[-22.627417, -11.313708, 22.627417, 11.313708]], np.float32),
                    "aspect ratio is height / width, and round the corners to whole pixels"),
                   (np.array([[-11.313708, -22.627417, 11.313708, 22.627417]], np.float32),
                    "round the corners to whole pixels: np.round([-w, -h, w, h] * size / 2)"),
                   (np.array([[-16, -32, 16, 32]], np.float32),
                    "keep the area: h = size * sqrt(r) and w = size / sqrt(r), not h = size * r"))),
        Case("size 32, ratio 0.5: corners rounded to whole pixels", ((32,), (0.5,)),
             hint="round the corners: round([-w, -h, w, h] * size / 2) with w = 1 / sqrt(r), "
                  "h = sqrt(r)"),
        Case("two scales, two ratios: ratio-major order (for each ratio, every scale)",
             ((16, 32), (0.5, 1.0)),
             hint="list the anchors ratio by ratio: all scales of ratio 0.5 first, then all "
                  "scales of ratio 1 (shape (R * S, 4))"),
        Case("the result is float32", ((64,), (1.0,)),
             hint="return float32 corners (np.float32), as torchvision does", shape_rule=True),
    ]  # fmt: skip


def _anchor_random(rng):
    scales = tuple(
        float(v) for v in rng.choice([16, 24, 32, 64, 100, 128], int(rng.integers(1, 4)))
    )
    ratios = tuple(
        float(v) for v in rng.choice([0.25, 0.5, 1.0, 2.0, 3.0], int(rng.integers(1, 4)))
    )
    return Case("random scales and ratios", (scales, ratios), hint="")


EXERCISES = [
    Exercise(
        "box_area", "box_area(boxes) -> (N,) float",
        FRAME + " Return the area (x2 - x1) * (y2 - y1) of each box, as a flat (N,) array.",
        "subtract the corners column by column: boxes[:, 2] - boxes[:, 0] is every width at once",
        box_area, _area_cases, _area_random, parameters=("boxes",),
    ),
    Exercise(
        "box_iou", "box_iou(boxes1, boxes2) -> (N, M) float",
        FRAME + " Return the IoU |A ∩ B| / |A ∪ B| of every box of boxes1 (N, 4) with every box "
        "of boxes2 (M, 4): an (N, M) matrix. Two zero-area boxes have IoU 0.",
        "the intersection is [max(x1), max(y1), min(x2), min(y2)], its sides clamped at 0; "
        "union = area1 + area2 - intersection; broadcast (N, 1) against (1, M)",
        box_iou, _iou_cases, _iou_random, parameters=("boxes1", "boxes2"),
    ),
    Exercise(
        "nms", "nms(boxes, scores, iou_threshold) -> (K,) int64",
        FRAME + " Greedy non-maximum suppression (torchvision's nms): visit the boxes by "
        "decreasing score (ties: lower index first); keep a box unless its IoU with an already "
        "kept box is strictly greater than iou_threshold. Return the kept indices, best first.",
        "order = np.argsort(-scores, kind='stable'); loop over it, keep a box when box_iou with "
        "every kept box is <= iou_threshold (you may use the box_iou you wrote)",
        nms, _nms_cases, _nms_random, parameters=("boxes", "scores", "iou_threshold"),
    ),
    Exercise(
        "encode_boxes", "encode_boxes(reference_boxes, proposals, weights) -> (N, 4) float",
        FRAME + " R-CNN's box regression targets: with centres px = x1 + w / 2 and sizes pw = "
        "x2 - x1 of the proposals and gx, gw of the reference boxes: dx = wx (gx - px) / pw, "
        "dy = wy (gy - py) / ph, dw = ww log(gw / pw), dh = wh log(gh / ph); weights = "
        "(wx, wy, ww, wh). (torchvision's BoxCoder.encode_single)",
        "compute the centres and sizes of both sets first, then the four formulas, then "
        "np.stack([...], axis=1)",
        encode_boxes, _encode_cases, _encode_random,
        parameters=("reference_boxes", "proposals", "weights"),
    ),
    Exercise(
        "decode_boxes", "decode_boxes(rel_codes, boxes, weights) -> (N, 4 C) float",
        FRAME + " The inverse of encode_boxes: rel_codes (N, 4 C) holds C sets of (dx, dy, dw, "
        "dh) per box; divide them by the weights, clamp dw and dh from above at log(1000 / 16), "
        "then cx = px + dx pw, w = pw exp(dw) (likewise y) and return x1 = cx - w / 2, "
        "y1, x2 = cx + w / 2, y2 for each set. (torchvision's BoxCoder.decode_single)",
        "dx = rel_codes[:, 0::4] / wx gives (N, C); build the four corners and interleave them "
        "with np.stack(..., axis=2).reshape(N, 4 * C)",
        decode_boxes, _decode_cases, _decode_random, parameters=("rel_codes", "boxes", "weights"),
    ),
    Exercise(
        "generate_anchors", "generate_anchors(scales, aspect_ratios) -> (R * S, 4) float32",
        "The anchors of one feature-map cell, centred on 0 (torchvision's AnchorGenerator."
        "generate_anchors): for ratio r (height / width) h = sqrt(r), w = 1 / h; the anchor of "
        "size s is round([-w, -h, w, h] * s / 2); ratio-major order (for each ratio, every scale).",
        "h_ratios = np.sqrt(r); w_ratios = 1 / h_ratios; ws = (w_ratios[:, None] * s[None, :])"
        ".ravel(); then stack, halve and np.round",
        generate_anchors, _anchor_cases, _anchor_random, atol=1e-4,
        parameters=("scales", "aspect_ratios"),
    ),
]  # fmt: skip
