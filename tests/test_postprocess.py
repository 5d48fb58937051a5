"""Detections from head outputs, and pasting masks back into the image."""

import numpy as np
import pytest
from skimage.transform import resize

from rcnn_from_scratch.postprocess import (
    paste_masks_in_image,
    paste_masks_torchvision,
    postprocess_detections,
    softmax,
)


def test_softmax_is_stable_for_huge_logits():
    p = softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]])


def test_detections_drop_background_and_low_scores_and_suppress_per_class():
    proposals = np.array([[10, 10, 30, 30], [11, 11, 31, 31], [50, 50, 70, 70]], np.float32)
    logits = np.log(np.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.97, 0.0, 0.03]]) + 1e-12)
    out = postprocess_detections(
        logits, np.zeros((3, 12)), proposals, (100, 100), score_thresh=0.05
    )
    # proposal 1 is suppressed by proposal 0 (same class); proposal 2 is below the score threshold
    np.testing.assert_allclose(out["boxes"], proposals[:1])
    assert out["labels"].tolist() == [1] and out["labels"].dtype == np.int64
    np.testing.assert_allclose(out["scores"], [0.9], rtol=1e-5)


def test_detections_of_different_classes_on_one_box_both_survive():
    logits = np.log(np.array([[0.0, 0.5, 0.5]]) + 1e-12)
    out = postprocess_detections(logits, np.zeros((1, 4)), [[0, 0, 9, 9]], (20, 20))
    assert sorted(out["labels"].tolist()) == [1, 2]


def test_no_proposals_give_no_detections():
    out = postprocess_detections(np.zeros((0, 4)), np.zeros((0, 16)), np.zeros((0, 4)), (20, 20))
    assert out["boxes"].shape == (0, 4) and out["labels"].shape == (0,)


def test_a_full_mask_fills_exactly_the_pixels_whose_centres_are_in_the_box():
    pasted = paste_masks_in_image(np.ones((1, 28, 28)), [[2.3, 1.0, 7.6, 4.5]], (8, 10))
    expected = np.zeros((8, 10), bool)
    expected[1:4, 2:8] = True  # row centres 1.5..3.5, column centres 2.5..7.5
    np.testing.assert_array_equal(pasted[0], expected)


def test_pasting_into_an_aligned_box_matches_skimage_resize():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 7)).astype(np.float32)
    box = [4.0, 6.0, 32.0, 34.0]  # 28 x 28 pixels: 4 image pixels per mask pixel
    ours = paste_masks_in_image(mask[None], [box], (40, 40), threshold=0.5)[0, 6:34, 4:32]
    # skimage's order-1 resize uses the same pixel-centre mapping, with edge clamping
    theirs = resize(mask, (28, 28), order=1, mode="edge", anti_aliasing=False) >= 0.5
    assert (ours != theirs).mean() < 0.01  # equal but for values within rounding of 0.5


def test_a_box_partly_outside_the_image_is_cut_at_the_border():
    pasted = paste_masks_in_image(np.ones((1, 4, 4)), [[-5, -5, 3, 3]], (6, 6))
    assert pasted[0].sum() == 9 and pasted[0, :3, :3].all()


def test_mask_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="masks must have shape"):
        paste_masks_in_image(np.ones((2, 4, 4)), [[0, 0, 2, 2]], (6, 6))


# --- torchvision's pasting ---------------------------------------------------------------------------


def test_torchvision_paste_of_the_checked_example():
    """REALSCALE's example: box [10.3, 20.7, 50.2, 80.9] expands to [8.875, 18.55, 51.625, 83.05],
    truncated to [8, 18, 51, 83]; the padded ring of zeros leaves rows 19-82 and cols 9-50 non-zero."""
    pasted = paste_masks_torchvision(
        np.ones((1, 28, 28), np.float32), [[10.3, 20.7, 50.2, 80.9]], (100, 120)
    )
    assert pasted.shape == (1, 1, 100, 120) and pasted.dtype == np.float32
    rows, cols = np.nonzero(pasted[0, 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (19, 82, 9, 50)
    assert round(float(pasted[0, 0, 50, 9]), 4) == 0.5227  # left edge, mid-height
    np.testing.assert_array_equal(pasted[0, 0, 25:75, 12:48], 1.0)  # the interior stays 1


def test_torchvision_paste_of_a_box_partly_outside_equals_the_visible_part_of_skimage_resize():
    rng = np.random.default_rng(3)
    mask = rng.random((28, 28)).astype(np.float32)
    # expanded by 30 / 28 about its centre: [-11.39, -6.48, 21.19, 31.88] -> int box [-11, -6, 21, 31]
    pasted = paste_masks_torchvision(mask[None, None], [[-10.3, -5.2, 20.1, 30.6]], (25, 18))[0, 0]
    padded = np.pad(mask, 1)
    # skimage's order-1 resize maps pixel centres the same way and clamps at the edges
    full = resize(padded, (31 - -6 + 1, 21 - -11 + 1), order=1, mode="edge", anti_aliasing=False)
    expected = np.zeros((25, 18), np.float32)
    expected[:, :] = full[6 : 6 + 25, 11 : 11 + 18]  # int box covers all of the 25 x 18 image
    # skimage works in float64, torch in float32 (its scale 30 / 38 rounded): up to ~1.3e-6 apart
    np.testing.assert_allclose(pasted, expected, atol=5e-6)


def test_torchvision_paste_cut_at_the_right_and_bottom_is_a_crop_of_a_larger_canvas():
    rng = np.random.default_rng(4)
    masks = rng.random((3, 1, 28, 28)).astype(np.float32)
    boxes = np.array([[30.2, 10.5, 70.7, 44.1], [5.0, 35.3, 20.9, 90.0], [45.5, 45.5, 46.0, 46.0]])
    small = paste_masks_torchvision(masks, boxes, (40, 50))
    large = paste_masks_torchvision(masks, boxes, (120, 130))
    np.testing.assert_array_equal(small, large[:, :, :40, :50])


def test_torchvision_paste_of_a_box_wholly_outside_the_image_is_empty():
    pasted = paste_masks_torchvision(np.ones((1, 28, 28), np.float32), [[60, 60, 80, 90]], (40, 50))
    assert pasted.shape == (1, 1, 40, 50) and not pasted.any()


def test_torchvision_paste_of_no_detections_has_shape_0_1_h_w():
    pasted = paste_masks_torchvision(np.zeros((0, 1, 28, 28), np.float32), np.zeros((0, 4)), (7, 9))
    assert pasted.shape == (0, 1, 7, 9) and pasted.dtype == np.float32


def test_torchvision_paste_mask_count_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="masks must have shape"):
        paste_masks_torchvision(np.ones((2, 1, 28, 28)), [[0, 0, 2, 2]], (6, 6))


@pytest.mark.parametrize("seed", range(3))
def test_torchvision_paste_equals_torchvisions_paste_masks_in_image(seed):
    torch = pytest.importorskip("torch")
    roi_heads = pytest.importorskip("torchvision.models.detection.roi_heads")
    rng = np.random.default_rng(seed)
    H, W, D = 180, 260, 40
    x1, y1 = rng.uniform(-20, W - 1, D), rng.uniform(-20, H - 1, D)
    boxes = np.stack([x1, y1, x1 + rng.uniform(0, 200, D), y1 + rng.uniform(0, 160, D)], 1)
    boxes = boxes.astype(np.float32)
    masks = rng.random((D, 1, 28, 28), dtype=np.float32)
    theirs = roi_heads.paste_masks_in_image(
        torch.from_numpy(masks), torch.from_numpy(boxes), (H, W)
    ).numpy()
    ours = paste_masks_torchvision(masks, boxes, (H, W))
    assert ours.shape == theirs.shape == (D, 1, H, W)
    diff = np.abs(ours - theirs)
    print(f"max |ours - torchvision| = {diff.max():.3g}")  # measured: about 1.2e-7 (one ulp)
    assert (diff <= 1e-6).mean() >= 0.9999 and diff.max() < 1e-5
