"""The shared input rules: one set of checks, the same error wording everywhere."""

import numpy as np
import pytest

from rcnn_from_scratch.conventions import (
    MAX_ALLOCATION_BYTES,
    as_boxes,
    as_feature_map,
    as_rgb_float,
    as_rgb_uint8,
    as_rois,
    as_scores,
    as_size,
    check_allocation,
    check_int,
    check_positive_finite,
    check_threshold,
)


def test_uint8_rgb_becomes_float_in_unit_interval():
    img = np.array([[[0, 128, 255]]], np.uint8)
    np.testing.assert_allclose(as_rgb_float(img), [[[0, 128 / 255, 1]]], rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1)])
def test_grayscale_is_repeated_over_three_channels(shape):
    gray = np.arange(20, dtype=np.uint8).reshape(shape)
    rgb = as_rgb_uint8(gray)
    assert rgb.shape == (4, 5, 3)
    assert np.all(rgb == gray.reshape(4, 5)[:, :, None])


def test_rgba_drops_alpha():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255
    assert as_rgb_uint8(rgba).shape == (2, 2, 3) and as_rgb_uint8(rgba).max() == 0


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 4, 2), np.uint8), "H x W x 3"),
        (np.zeros((2, 4, 4, 3), np.uint8), "H x W x 3"),
        (np.full((4, 4, 3), 2.0), r"\[0, 1\]"),
        (np.full((4, 4, 3), np.nan), "finite"),
        (np.zeros((4, 4, 3), np.int32), "uint8 or float"),
        (np.zeros((0, 4, 3), np.uint8), "H x W x 3"),
    ],
)
def test_bad_images_give_clear_errors(image, message):
    with pytest.raises(ValueError, match=message):
        as_rgb_float(image)


def test_rois_from_a_list_of_per_image_boxes_put_the_batch_index_first():
    rois = as_rois([np.array([[0, 0, 1, 1]], np.float32), np.zeros((0, 4)), np.ones((2, 4))])
    assert rois.shape == (3, 5)
    assert rois[:, 0].tolist() == [0, 2, 2]


def test_rois_with_batch_index_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="only 1 image"):
        as_rois(np.array([[1, 0, 0, 2, 2]], np.float32), num_images=1)
    with pytest.raises(ValueError, match="integers"):
        as_rois(np.array([[0.5, 0, 0, 2, 2]], np.float32))
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        as_rois(np.zeros((3, 4)))


def test_boxes_keep_float64_and_make_everything_else_float32():
    assert as_boxes(np.zeros((1, 4))).dtype == np.float64
    assert as_boxes(np.zeros((1, 4), np.int64)).dtype == np.float32
    assert as_boxes([]).shape == (0, 4)


def test_scores_and_sizes_and_maps_are_checked():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        as_scores([1, 2], 3)
    assert as_size(7, "output_size") == (7, 7)
    with pytest.raises(ValueError, match="output_size"):
        as_size((0, 2), "output_size")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        as_feature_map(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="float32 or float64"):
        as_feature_map(np.zeros((1, 3, 4, 4), np.int64))


@pytest.mark.parametrize("value", ["0.5", None, True, float("nan"), 1.5, -0.1, [0.5]])
def test_check_threshold_refuses_what_is_not_a_number_in_the_unit_interval(value):
    with pytest.raises(ValueError, match="iou_threshold"):
        check_threshold(value, "iou_threshold")


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, np.float32(0.7), np.int64(1)])
def test_check_threshold_accepts_real_numbers_in_the_unit_interval(value):
    assert check_threshold(value, "t") == float(value)


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan"), "2", None])
def test_check_positive_finite_refuses_zero_negative_inf_nan_and_strings(value):
    with pytest.raises(ValueError, match="spatial_scale"):
        check_positive_finite(value, "spatial_scale")


@pytest.mark.parametrize("value", [2.0, True, "3", None, 10**7])
def test_check_int_refuses_floats_bools_strings_and_out_of_range(value):
    with pytest.raises(ValueError, match="hidden"):
        check_int(value, "hidden", 1, 65536)


def test_check_allocation_refuses_more_than_the_limit_and_products_that_overflow():
    check_allocation(MAX_ALLOCATION_BYTES // 8, 8, "fits")
    with pytest.raises(ValueError, match="the big array would need"):
        check_allocation(MAX_ALLOCATION_BYTES // 8 + 1, 8, "the big array")
    with pytest.raises(ValueError, match="GiB"):
        check_allocation(float(10**300) * 10**300, 8, "inf")  # inf
