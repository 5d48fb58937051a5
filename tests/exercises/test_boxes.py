"""The box exercises' checks catch the typical mistakes, each with the hint meant for it.

Each exercise has a plain student-style implementation (loops, float64, another floating-point
order than the package's) with switches for the typical mistakes: correct, it must pass; with one
mistake switched on, it must fail with that mistake's hint.
"""

import math

import numpy as np
import pytest

from rcnn_from_scratch import exercises


def area(boxes, mistake=None):
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if mistake == "plus one":
        w, h = w + 1, h + 1
    if mistake == "width twice":
        h = w
    if mistake == "no subtraction":
        w, h = b[:, 2], b[:, 3]
    a = w * h
    return a[:, None] if mistake == "column" else a


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("plus one", "x2 - x1 + 1"),
        ("width twice", "the height is y2 - y1"),
        ("no subtraction", "subtract the corners"),
        ("column", "must return (N,)"),
    ],
)
def test_box_area_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("box_area", lambda boxes: area(boxes, mistake))
    assert not result and hint in result.hint, str(result)


def iou(boxes1, boxes2, mistake=None):
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    plus = 1.0 if mistake == "plus one" else 0.0
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            lo = np.maximum(a[i, :2], b[j, :2])
            hi = np.minimum(a[i, 2:], b[j, 2:])
            if mistake == "max for the far corner":
                hi = np.maximum(a[i, 2:], b[j, 2:])
            side = hi - lo + plus
            if mistake != "no clamp":
                side = np.maximum(side, 0)
            inter = side[0] * side[1]
            area_a = (a[i, 2] - a[i, 0] + plus) * (a[i, 3] - a[i, 1] + plus)
            area_b = (b[j, 2] - b[j, 0] + plus) * (b[j, 3] - b[j, 1] + plus)
            union = area_a + area_b - inter
            if mistake == "union without the overlap":
                union = area_a + area_b
            if mistake == "one area":
                union = area_a
            if mistake == "nan":
                out[i, j] = inter / union if union else np.nan
            else:
                out[i, j] = inter / union if union != 0 else 0.0
    if mistake == "transposed":
        return out.T
    if mistake == "elementwise":
        return np.diag(out) if out.shape[0] == out.shape[1] else out[:, 0]
    return out


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("plus one", "x2 - x1 + 1"),
        ("no clamp", "clamp the intersection"),
        ("max for the far corner", "the smaller x2"),
        ("union without the overlap", "subtract it once"),
        ("one area", "divided by the area of one box"),
        ("transposed", "entry (i, j)"),
        ("elementwise", "must return (N, M)"),
        ("nan", "not 0 / 0 = NaN"),
    ],
)
def test_box_iou_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("box_iou", lambda b1, b2: iou(b1, b2, mistake))
    assert not result and hint in result.hint, str(result)


def greedy_nms(boxes, scores, iou_threshold, mistake=None):
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64)
    order = {
        None: np.argsort(-s, kind="stable"),
        "no sort": np.arange(len(s)),
        "ascending": np.argsort(s, kind="stable"),
        "reversed ties": np.argsort(s, kind="stable")[::-1],
    }.get(mistake, np.argsort(-s, kind="stable"))
    m = iou(b, b, "plus one" if mistake == "plus one" else None)
    kept, alive = [], np.ones(len(b), bool)
    for i in order:
        if mistake == "suppressed still suppress":
            if not any(m[i, k] > iou_threshold for k in order[: list(order).index(i)]):
                kept.append(i)
            continue
        if not alive[i]:
            continue
        kept.append(i)
        over = m[i] >= iou_threshold if mistake == ">=" else m[i] > iou_threshold
        alive &= ~over
    keep = np.array(kept, dtype=np.int64)
    if mistake == "index order":
        return np.sort(keep)
    if mistake == "bool mask":
        mask = np.zeros(len(b), bool)
        mask[keep] = True
        return mask
    if mistake == "float indices":
        return keep.astype(np.float64)
    return keep


@pytest.mark.parametrize(
    "mistake, hint",
    [
        (">=", "suppression is IoU > threshold"),
        ("no sort", "descending score"),
        ("ascending", "descending score"),
        ("index order", "not in index order"),
        ("plus one", "x2 - x1 + 1"),
        ("suppressed still suppress", "already KEPT"),
        ("reversed ties", "stable sort"),
        ("bool mask", "indices of the kept boxes"),
    ],
)
def test_nms_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("nms", lambda b, s, t: greedy_nms(b, s, t, mistake))
    assert not result and hint in result.hint, str(result)


def test_nms_returning_float_indices_is_reported_as_a_dtype():
    result = exercises.check("nms", lambda b, s, t: greedy_nms(b, s, t, "float indices"))
    assert not result and result.failure.kind == "dtype"
    assert "expected integer" in str(result)


def _centres(b):
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + w / 2, b[:, 1] + h / 2, w, h


def encode(reference_boxes, proposals, weights, mistake=None):
    g = np.asarray(reference_boxes, dtype=np.float64)
    p = np.asarray(proposals, dtype=np.float64)
    if mistake == "swapped":
        g, p = p, g
    gx, gy, gw, gh = _centres(g)
    px, py, pw, ph = _centres(p)
    if mistake == "corners":
        gx, gy, px, py = g[:, 0], g[:, 1], p[:, 0], p[:, 1]
    wx, wy, ww, wh = (1, 1, 1, 1) if mistake == "no weights" else weights
    dx, dy = wx * (gx - px) / pw, wy * (gy - py) / ph
    if mistake == "not relative":
        dx, dy = wx * (gx - px), wy * (gy - py)
    dw, dh = ww * np.log(gw / pw), wh * np.log(gh / ph)
    if mistake == "no log":
        dw, dh = ww * gw / pw, wh * gh / ph
    if mistake == "difference":
        dw, dh = ww * (gw - pw) / pw, wh * (gh - ph) / ph
    if mistake == "x for y":
        dy, dh = wy * (gy - py) / pw, wh * np.log(gh / pw)
    return np.stack([dx, dy, dw, dh], axis=1)


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("swapped", "you swapped the two arguments"),
        ("corners", "not the left edges"),
        ("not relative", "divide the shift by the proposal's width"),
        ("no log", "the LOG of the ratio"),
        ("difference", "not the difference"),
        ("no weights", "multiply"),
        ("x for y", "dy uses the heights"),
    ],
)
def test_encode_boxes_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("encode_boxes", lambda g, p, w: encode(g, p, w, mistake))
    assert not result and hint in result.hint, str(result)


def decode(rel_codes, boxes, weights, mistake=None):
    d = np.asarray(rel_codes, dtype=np.float64)
    b = np.asarray(boxes, dtype=np.float64)
    px, py, pw, ph = (v[:, None] for v in _centres(b))
    wx, wy, ww, wh = weights
    if mistake == "multiply by the weights":
        wx, wy, ww, wh = 1 / wx, 1 / wy, 1 / ww, 1 / wh
    step = 4 if mistake != "one set only" else d.shape[1]
    dx, dy = d[:, 0::step] / wx, d[:, 1::step] / wy
    dw, dh = d[:, 2::step] / ww, d[:, 3::step] / wh
    clip = math.log(1000 / 16)
    if mistake == "both sides clamped":
        dw, dh = np.clip(dw, -clip, clip), np.clip(dh, -clip, clip)
    elif mistake != "no clamp":
        dw, dh = np.minimum(dw, clip), np.minimum(dh, clip)
    cx, cy = px + dx * pw, py + dy * ph
    if mistake == "shift not relative":
        cx, cy = px + dx, py + dy
    w, h = pw * np.exp(dw), ph * np.exp(dh)
    if mistake == "about the corner":
        x1, y1 = cx - pw / 2, cy - ph / 2
        out = np.stack([x1, y1, x1 + w, y1 + h], axis=2)
    else:
        out = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=2)
    return out.reshape(len(b), -1)


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("shift not relative", "relative to the box's width"),
        ("about the corner", "about the box's CENTRE"),
        ("multiply by the weights", "decode undoes encode"),
        ("no clamp", "clamp dw and dh at log(1000 / 16)"),
        ("both sides clamped", "clamp only from above"),
        ("one set only", "C sets"),
    ],
)
def test_decode_boxes_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("decode_boxes", lambda d, b, w: decode(d, b, w, mistake))
    assert not result and hint in result.hint, str(result)


def anchors(scales, aspect_ratios, mistake=None):
    out = []
    pairs = [(r, s) for r in aspect_ratios for s in scales]
    if mistake == "scale-major":
        pairs = [(r, s) for s in scales for r in aspect_ratios]
    for r, s in pairs:
        h, w = math.sqrt(r) * s, s / math.sqrt(r)
        if mistake == "width over height":
            h, w = w, h
        if mistake == "area not kept":
            h, w = r * s, s
        box = np.array([-w, -h, w, h]) / 2
        if mistake == "corner at 0":
            box = np.array([0, 0, w, h])
        out.append(box if mistake == "not rounded" else np.round(box))
    dtype = np.float64 if mistake == "float64" else np.float32
    return np.array(out, dtype=dtype).reshape(-1, 4)


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("width over height", "height / width (d2l's is width / height)"),
        ("area not kept", "keep the area"),
        ("corner at 0", "centre the anchor on 0"),
        ("not rounded", "round the corners"),
        ("scale-major", "ratio by ratio"),
    ],
)
def test_generate_anchors_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("generate_anchors", lambda s, r: anchors(s, r, mistake))
    assert not result and hint in result.hint, str(result)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("box_area", area),
        ("box_iou", iou),
        ("nms", greedy_nms),
        ("encode_boxes", encode),
        ("decode_boxes", decode),
        ("generate_anchors", anchors),
    ],
)
def test_a_correct_student_version_passes(name, fn):
    result = exercises.check(name, fn)
    assert result, str(result)


def test_float64_anchors_pass_because_any_float_dtype_is_accepted():
    assert exercises.check("generate_anchors", lambda s, r: anchors(s, r, "float64"))
