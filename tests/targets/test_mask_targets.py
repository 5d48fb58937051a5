"""Mask targets: torchvision's ``project_masks_on_boxes`` on hand-made geometry, against a slow
reference written here from torchvision's RoIAlign kernel, and (when installed) torchvision itself."""

import math

import numpy as np
import pytest

from rcnn_from_scratch.targets.mask_targets import project_masks_on_boxes


def _torchvision_bilinear(img, y, x):
    """torchvision's CPU ``bilinear_interpolate`` for one sample of an ``(H, W)`` map."""
    H, W = img.shape
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_lo, x_lo = int(y), int(x)
    if y_lo >= H - 1:
        y_lo = y_hi = H - 1
        y = float(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= W - 1:
        x_lo = x_hi = W - 1
        x = float(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = y - y_lo, x - x_lo
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * img[y_lo, x_lo]
        + hy * lx * img[y_lo, x_hi]
        + ly * hx * img[y_hi, x_lo]
        + ly * lx * img[y_hi, x_hi]
    )


def reference_projection(gt_masks, boxes, matched_gt, size):
    """Per RoI, per output cell: the mean of ``g_h x g_w`` bilinear samples, ``g = ceil(roi / size)``
    (aligned=False: no half-pixel shift, RoI sides at least 1 pixel)."""
    out = np.zeros((len(boxes), size, size))
    for k, ((x1, y1, x2, y2), n) in enumerate(zip(boxes, matched_gt, strict=True)):
        img = np.asarray(gt_masks[n], np.float64)
        roi_w, roi_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        bin_w, bin_h = roi_w / size, roi_h / size
        gw, gh = math.ceil(roi_w / size), math.ceil(roi_h / size)
        for ph in range(size):
            for pw in range(size):
                total = 0.0
                for iy in range(gh):
                    y = y1 + ph * bin_h + (iy + 0.5) * bin_h / gh
                    for ix in range(gw):
                        x = x1 + pw * bin_w + (ix + 0.5) * bin_w / gw
                        total += _torchvision_bilinear(img, y, x)
                out[k, ph, pw] = total / (gh * gw)
    return out


def _left_half_object():
    """A 48 x 48 image; the object's box is [8, 8, 24, 24] and its mask the box's left half
    (rows 8..23, columns 8..15)."""
    mask = np.zeros((48, 48), bool)
    mask[8:24, 8:16] = True
    return mask


def test_box_on_the_object_sees_its_left_half():
    t = project_masks_on_boxes(_left_half_object()[None], [[8, 8, 24, 24]], [0])
    assert t.shape == (1, 28, 28) and t.dtype == np.float32
    # aligned=False samples at x = 8 + (p + 0.5) 16 / 28, where pixel j's value sits at x = j
    c = 8 + (np.arange(28) + 0.5) * 16 / 28
    left, right = c <= 15, c >= 16  # columns 0..12 and 14..27; column 13 straddles the edge
    rows = c <= 23  # the last two rows read half of row 24, which is background
    assert np.all(t[0][np.ix_(rows, left)] == 1)
    assert np.all(t[0][:, right] == 0)
    # the whole target in closed form: the mask is a product of a row and a column profile
    expected = np.outer(np.clip(24 - c, 0, 1), np.clip(16 - c, 0, 1))
    np.testing.assert_allclose(t[0], expected, atol=1e-6)


def test_box_inside_the_object_is_all_ones_and_box_outside_is_all_zeros():
    mask = _left_half_object()[None]
    t = project_masks_on_boxes(mask, [[9, 9, 15, 22], [30, 28, 46, 40]], [0, 0])
    assert np.all(t[0] == 1)
    assert np.all(t[1] == 0)


def test_matched_gt_picks_the_instance():
    masks = np.zeros((2, 48, 48), np.uint8)
    masks[0, 8:24, 8:16] = 1
    masks[1, 30:44, 30:44] = 1
    boxes = [[9, 9, 15, 22], [32, 32, 42, 42], [32, 32, 42, 42], [9, 9, 15, 22]]
    t = project_masks_on_boxes(masks, boxes, np.array([0, 1, 0, 1]), size=14)
    assert t.shape == (4, 14, 14)
    assert np.all(t[0] == 1) and np.all(t[1] == 1)
    assert np.all(t[2] == 0) and np.all(t[3] == 0)


@pytest.mark.parametrize("shape", [(20, 24), (40, 44)])  # both of roi_align's code paths
def test_projection_equals_the_slow_reference(shape):
    rng = np.random.default_rng(0)
    H, W = shape
    masks = rng.uniform(size=(3, H, W)) > 0.6
    x1 = rng.uniform(-4, W - 2, size=9)
    y1 = rng.uniform(-4, H - 2, size=9)
    boxes = np.stack(
        [x1, y1, x1 + rng.uniform(0.3, W, 9), y1 + rng.uniform(0.3, H, 9)], axis=1
    )  # some smaller than a pixel, some crossing the image border
    boxes[0] = [2.25, 3.5, 2.75, 3.75]
    boxes[1] = [-3, -3, W + 3, H + 3]
    matched = rng.integers(0, 3, size=9)
    t = project_masks_on_boxes(masks, boxes, matched, size=7)
    ref = reference_projection(masks, boxes.astype(np.float32), matched, 7)
    np.testing.assert_allclose(t, ref, atol=1e-5)
    assert t.min() >= 0 and t.max() <= 1


def test_projection_at_the_heads_resolution_equals_the_slow_reference():
    rng = np.random.default_rng(1)
    masks = rng.uniform(size=(2, 30, 30))  # soft masks are accepted too
    boxes = np.array([[1.3, 2.6, 25.1, 17.9], [10, 0, 30, 30]], np.float32)
    t = project_masks_on_boxes(masks, boxes, [1, 0])
    np.testing.assert_allclose(t, reference_projection(masks, boxes, [1, 0], 28), atol=1e-5)


def test_no_boxes_gives_an_empty_target():
    masks = np.zeros((2, 10, 10), bool)
    t = project_masks_on_boxes(masks, np.zeros((0, 4)), np.zeros(0, np.int64))
    assert t.shape == (0, 28, 28) and t.dtype == np.float32
    assert project_masks_on_boxes(np.zeros((0, 10, 10)), [], [], size=5).shape == (0, 5, 5)


def test_bad_input_is_rejected_with_a_clear_message():
    masks = np.zeros((2, 10, 10), bool)
    box = [[0, 0, 5, 5]]
    with pytest.raises(ValueError, match=r"gt_masks must have shape \(G, H, W\)"):
        project_masks_on_boxes(masks[0], box, [0])
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\)"):
        project_masks_on_boxes(masks, [[0, 0, 5]], [0])
    with pytest.raises(ValueError, match="x1 <= x2"):
        project_masks_on_boxes(masks, [[5, 0, 0, 5]], [0])
    with pytest.raises(ValueError, match=r"matched_gt must have shape \(1,\)"):
        project_masks_on_boxes(masks, box, [0, 1])
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        project_masks_on_boxes(masks, box, [2])
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        project_masks_on_boxes(masks, box, [-1])  # a background RoI
    with pytest.raises(ValueError, match="integer"):
        project_masks_on_boxes(masks, box, [0.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        project_masks_on_boxes(np.full((2, 10, 10), 255, np.uint8), box, [0])
    with pytest.raises(ValueError, match="size"):
        project_masks_on_boxes(masks, box, [0], size=0)


def test_parity_with_torchvision():
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(2)
    masks = rng.uniform(size=(3, 32, 36)) > 0.5
    boxes = np.array([[1, 2, 30, 20], [0.5, 0.5, 4, 9], [-2, 5, 40, 33]], np.float32)
    matched = np.array([2, 0, 1])
    rois = torch.cat([torch.from_numpy(matched[:, None]).float(), torch.from_numpy(boxes)], dim=1)
    expected = ops.roi_align(torch.from_numpy(masks[:, None]).float(), rois, (28, 28), 1.0)[:, 0]
    np.testing.assert_allclose(
        project_masks_on_boxes(masks, boxes, matched), expected.numpy(), atol=1e-5
    )
