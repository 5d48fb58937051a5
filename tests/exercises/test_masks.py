"""The mask exercises' checks catch the typical mistakes, each with the hint meant for it."""

import math

import numpy as np
import pytest

from rcnn_from_scratch import exercises
from rcnn_from_scratch.bilinear import bilinear_interpolate
from rcnn_from_scratch.roi.roi_align import roi_align


def targets(gt_masks, boxes, matched_gt, size=28, mistake=None):
    masks = np.asarray(gt_masks, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = 28 if mistake == "fixed size" and size != 28 else size
    out = np.zeros((len(boxes), size, size))
    for k, box in enumerate(boxes):
        g = 0 if mistake == "mask 0" else int(matched_gt[k])
        m = masks[g].T if mistake == "transposed" else masks[g]
        if mistake == "whole mask":
            box = np.array([0, 0, m.shape[1], m.shape[0]], dtype=np.float64)
        roi = np.concatenate([[0.0], box])[None]
        out[k] = roi_align(m[None, None], roi, size, 1.0, 0, mistake == "aligned")[0, 0]
    if mistake == "thresholded":
        out = (out >= 0.5).astype(np.float64)
    return out[:, None] if mistake == "channel kept" else out


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("transposed", "transposed"),
        ("whole mask", "SEEN THROUGH the box"),
        ("mask 0", "gt_masks[matched_gt[k]]"),
        ("thresholded", "not thresholded"),
        ("aligned", "aligned=False"),
        ("fixed size", "not a fixed 28"),
        ("channel kept", "must return (K, size, size)"),
    ],
)
def test_project_masks_on_boxes_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check(
        "project_masks_on_boxes", lambda *a, **k: targets(*a, **k, mistake=mistake)
    )
    assert not result and hint in result.hint, str(result)


def paste(masks, boxes, image_size, threshold=0.5, mistake=None):
    masks = np.asarray(masks, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    H, W = image_size
    out = np.zeros((len(boxes), H, W), dtype=bool)
    for d, (x1, y1, x2, y2) in enumerate(boxes):
        m = masks[d].T if mistake == "transposed" else masks[d]
        M_h, M_w = m.shape
        if mistake == "rounded box":
            x1, y1, x2, y2 = (round(v) for v in (x1, y1, x2, y2))
        if mistake == "inclusive end":
            cols = np.arange(math.floor(x1), math.floor(x2) + 1)
            rows = np.arange(math.floor(y1), math.floor(y2) + 1)
        else:
            cols = np.arange(math.ceil(x1 - 0.5), math.ceil(x2 - 0.5))
            rows = np.arange(math.ceil(y1 - 0.5), math.ceil(y2 - 0.5))
        if mistake != "no clip":
            cols, rows = cols[(cols >= 0) & (cols < W)], rows[(rows >= 0) & (rows < H)]
        if len(rows) == 0 or len(cols) == 0:
            continue
        centre = 0.0 if mistake == "corners" else 0.5
        ys = (rows + centre - y1) / (y2 - y1) * M_h - 0.5
        xs = (cols + centre - x1) / (x2 - x1) * M_w - 0.5
        if mistake == "nearest":
            ys = np.clip(np.floor(ys + 0.5), 0, M_h - 1)
            xs = np.clip(np.floor(xs + 0.5), 0, M_w - 1)
        values = bilinear_interpolate(m, ys[:, None], xs[None, :])
        inside = values > threshold if mistake == ">" else values >= threshold
        out[d, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = inside
    return out.astype(np.float64) if mistake == "float" else out


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("inclusive end", "its CENTRE (j + 0.5, i + 0.5)"),
        ("rounded box", "do not round the box"),
        ("transposed", "transposed"),
        (">", ">= threshold (not >)"),
        ("nearest", "not the nearest mask cell"),
        ("corners", "not the pixel's corner"),
        ("no clip", "clip the pixel range to the image"),
        ("float", "must return (D, H, W) bool"),
    ],
)
def test_paste_masks_in_image_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check(
        "paste_masks_in_image", lambda *a, **k: paste(*a, **k, mistake=mistake)
    )
    assert not result and hint in result.hint, str(result)


@pytest.mark.parametrize(
    "name, fn", [("project_masks_on_boxes", targets), ("paste_masks_in_image", paste)]
)
def test_a_correct_student_version_passes(name, fn):
    result = exercises.check(name, fn)
    assert result, str(result)
