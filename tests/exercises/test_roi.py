"""The RoI exercises' checks catch the typical mistakes, each with the hint meant for it."""

import math

import numpy as np
import pytest

from rcnn_from_scratch import exercises
from rcnn_from_scratch.bilinear import bilinear_interpolate_reference


def _pair(output_size):
    return (output_size, output_size) if np.isscalar(output_size) else tuple(output_size)


def pool(input, boxes, output_size, spatial_scale=1.0, mistake=None):
    x = np.asarray(input, dtype=np.float64)
    N, C, H, W = x.shape
    P_h, P_w = _pair(output_size)
    rois = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    out = np.zeros((len(rois), C, P_h, P_w))
    scale = 1.0 if mistake == "no scale" else spatial_scale

    def rnd(v):
        if mistake == "floor":
            return math.floor(v)
        if mistake == "round to even":
            return round(v)
        return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)

    for k, (n, x1, y1, x2, y2) in enumerate(rois):
        n = 0 if mistake == "image 0" else int(n)
        sx, sy, ex, ey = (rnd(v * scale) for v in (x1, y1, x2, y2))
        extra = 0 if mistake == "exclusive end" else 1
        w, h = max(ex - sx + extra, 1), max(ey - sy + extra, 1)
        for ph in range(P_h):
            for pw in range(P_w):
                if mistake == "floor end":
                    he, we = math.floor((ph + 1) * h / P_h), math.floor((pw + 1) * w / P_w)
                else:
                    he, we = math.ceil((ph + 1) * h / P_h), math.ceil((pw + 1) * w / P_w)
                hs, ws = math.floor(ph * h / P_h), math.floor(pw * w / P_w)
                hs, he = min(max(hs + sy, 0), H), min(max(he + sy, 0), H)
                ws, we = min(max(ws + sx, 0), W), min(max(we + sx, 0), W)
                if mistake == "no clip":
                    hs, ws = hs, ws
                    he, we = ph * h // P_h + sy + h, we
                if he > hs and we > ws:
                    cell = x[n, :, hs:he, ws:we]
                    out[k, :, ph, pw] = cell.mean((1, 2)) if mistake == "mean" else cell.max((1, 2))
                elif mistake == "minus infinity":
                    out[k, :, ph, pw] = -np.inf
    return out


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("exclusive end", "end cell is included"),
        ("mean", "MAXIMUM"),
        ("no scale", "spatial_scale"),
        ("floor", "not int() or floor()"),
        ("round to even", "halves away from zero"),
        ("floor end", "may share a cell"),
        ("image 0", "index of the image"),
        ("minus infinity", "empty bin"),
    ],
)
def test_roi_pool_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("roi_pool", lambda *a, **k: pool(*a, **k, mistake=mistake))
    assert not result and hint in result.hint, str(result)


def sample_points(
    rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False, mistake=None
):
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 5)
    P_h, P_w = _pair(output_size)
    if mistake == "int output_size only":
        P_h = P_w = output_size if np.isscalar(output_size) else output_size[0]
    offset = 0.5 if aligned else 0.0
    if mistake == "plus half":
        offset = -offset
    if mistake == "no shift":
        offset = 0.0
    out = []
    for _, x1, y1, x2, y2 in rois:
        if mistake == "shift before scaling":
            corners = [(v - offset) * spatial_scale for v in (x1, y1, x2, y2)]
        else:
            scale = 1.0 if mistake == "no scale" else spatial_scale
            corners = [v * scale - offset for v in (x1, y1, x2, y2)]
        if mistake == "rounded box":
            corners = [round(v) for v in corners]
        sx, sy, ex, ey = corners
        w, h = ex - sx, ey - sy
        if (not aligned and mistake != "no minimum") or mistake == "minimum when aligned":
            w, h = max(w, 1.0), max(h, 1.0)
        axes = []
        for start, size, P in ((sy, h, P_h), (sx, w, P_w)):
            g = sampling_ratio if sampling_ratio > 0 else math.ceil(size / P)
            if mistake == "floor adaptive" and sampling_ratio <= 0:
                g = max(math.floor(size / P), 1)
            b = size / P
            frac = np.arange(g) if mistake == "corners" else np.arange(g) + 0.5
            axes.append(start + np.arange(P)[:, None] * b + frac[None, :] * b / g)
        out.append(tuple(axes))
    if mistake == "concatenated":
        return (
            out[0]
            if len(out) == 1
            else (np.concatenate([a for a, _ in out]), np.concatenate([b for _, b in out]))
        )
    return out


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("corners", "CENTRES"),
        ("floor adaptive", "ceil(roi_size / P)"),
        ("no scale", "spatial_scale"),
        ("rounded box", "no round"),
        ("no minimum", "max(x2 - x1, 1)"),
        ("no shift", "moves by half a cell"),
        ("plus half", "MINUS half a cell"),
        ("shift before scaling", "AFTER scaling"),
        ("minimum when aligned", "only when aligned=False"),
        ("int output_size only", "a pair (P_h, P_w)"),
        ("concatenated", "must return [(ys"),
    ],
)
def test_roi_align_sample_points_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check(
        "roi_align_sample_points", lambda *a, **k: sample_points(*a, **k, mistake=mistake)
    )
    assert not result and hint in result.hint, str(result)


def align(
    input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False, mistake=None
):
    x = np.asarray(input, dtype=np.float64)
    rois = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    P_h, P_w = _pair(output_size)
    shared = mistake if mistake in ("no shift", "rounded box", "no minimum") else None
    points = sample_points(rois, (P_h, P_w), spatial_scale, sampling_ratio, aligned, shared)
    H, W = x.shape[2:]
    out = np.zeros((len(rois), x.shape[1], P_h, P_w))
    for k, (ys, xs) in enumerate(points):
        n = 0 if mistake == "image 0" else int(rois[k, 0])
        for ph in range(P_h):
            for pw in range(P_w):
                if mistake == "one sample":
                    ys_, xs_ = [ys[ph].mean()], [xs[pw].mean()]
                else:
                    ys_, xs_ = ys[ph], xs[pw]
                values = []
                for yy in ys_:
                    for xx in xs_:
                        if mistake == "floor":
                            i, j = (
                                min(max(int(math.floor(yy)), 0), H - 1),
                                min(max(int(math.floor(xx)), 0), W - 1),
                            )
                            values.append(x[n, :, i, j])
                        elif mistake == "clamp everything":
                            values.append(
                                bilinear_interpolate_reference(
                                    x[n], min(max(yy, 0), H - 1), min(max(xx, 0), W - 1)
                                )
                            )
                        else:
                            values.append(bilinear_interpolate_reference(x[n], yy, xx))
                out[k, :, ph, pw] = (
                    np.max(values, axis=0) if mistake == "max" else np.mean(values, axis=0)
                )
    return out[:, :1] if mistake == "first channel" else out


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("floor", "no floor, no round"),
        ("max", "the mean, not the maximum"),
        ("one sample", "not one sample at the bin's centre"),
        ("rounded box", "no round"),
        ("no shift", "moves by half a cell"),
        ("clamp everything", "reads 0"),
        ("image 0", "image's index"),
        ("first channel", "(K, C, P_h, P_w)"),
        ("no minimum", "max(x2 - x1, 1)"),
    ],
)
def test_roi_align_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("roi_align", lambda *a, **k: align(*a, **k, mistake=mistake))
    assert not result and hint in result.hint, str(result)


@pytest.mark.parametrize(
    "name, fn",
    [("roi_pool", pool), ("roi_align_sample_points", sample_points), ("roi_align", align)],
)
def test_a_correct_student_version_passes(name, fn):
    result = exercises.check(name, fn)
    assert result, str(result)
