"""The pooler switch: each name gives its operator, with Mask R-CNN's RoIAlign settings."""

import numpy as np
import pytest

from rcnn_from_scratch.roi.pooler import make_pooler
from rcnn_from_scratch.roi.roi_align import RoIAlign, roi_align
from rcnn_from_scratch.roi.roi_pool import RoIPool


def test_each_name_gives_its_operator():
    assert isinstance(make_pooler("roi_pool", 7, 0.125), RoIPool)
    align = make_pooler("roi_align", 14, 0.125)
    assert isinstance(align, RoIAlign) and align.output_size == (14, 14)
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
    rois = np.array([[0, 3, 5, 40, 50]], np.float32)
    expected = roi_align(x, rois, 14, 0.125, sampling_ratio=2, aligned=True)
    np.testing.assert_array_equal(align(x, rois), expected)


def test_an_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="roi_warp"):
        make_pooler("roi_warp", 7, 0.125)
