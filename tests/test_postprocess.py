"""Detections from head outputs, and pasting masks back into the image."""

import numpy as np
import pytest
from skimage.transform import resize

from rcnn_from_scratch.postprocess import paste_masks_in_image, postprocess_detections, softmax


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
