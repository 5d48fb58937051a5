"""The lecture's worked example, exactly, and the measured cost of rounding."""

import numpy as np
import pytest

from rcnn_from_scratch.datasets.shapes import make_shapes_sample
from rcnn_from_scratch.roi.worked_example import bin_misalignment, worked_example
from rcnn_from_scratch.viz.roi import plot_misalignment, plot_pooled_vs_aligned, plot_roi_grids


def test_the_lecture_numbers():
    ex = worked_example(128, 15, 25)
    assert (
        round(ex.roi_cells, 2) == 2.93 and ex.pooled_cells == 2 and round(ex.lost_cells, 2) == 0.93
    )
    assert "15 * 25 / 128 = 2.93 cells" in str(ex) and "rounds it to 2 and loses 0.93" in str(ex)


def test_other_sizes_and_bad_sizes():
    ex = worked_example(800, 100, 50)  # stride 16: 6.25 cells
    assert ex.roi_cells == 6.25 and ex.pooled_cells == 6 and ex.lost_pixels == pytest.approx(4.0)
    with pytest.raises(ValueError):
        worked_example(0, 15, 25)


def test_roi_align_bins_sit_exactly_where_they_should_and_roi_pool_bins_do_not():
    for stride in (4, 8, 16, 32):
        m = bin_misalignment(stride, num_rois=200)
        assert m["roi_align"].max() < 1e-9
        assert m["roi_pool"].mean() > 0.25 * stride  # rounding both ends, plus the inclusive end


def test_the_figures_draw():
    # the lecture's rule (floor to 2 cells), torchvision's roi_pool, RoIAlign
    titles = [ax.get_title() for ax in plot_roi_grids().axes]
    assert len(titles) == 3 and "lecture" in titles[0] and "RoIAlign" in titles[2]
    assert plot_misalignment(strides=(4, 8), num_rois=50).axes
    image, target = make_shapes_sample(3)
    assert len(plot_pooled_vs_aligned(image, target["boxes"][0]).axes) == 3


def test_the_worked_example_as_a_mask_loses_with_roi_pooling_and_not_with_roialign():
    from rcnn_from_scratch.roi.worked_example import mask_through_roi

    ex = mask_through_roi(128, (40, 40, 55, 55), 25, 14)
    assert ex.truth.sum() == pytest.approx(np.pi * 7.5**2, rel=0.05)  # a disc of radius 7.5
    assert ex.feature.shape == (25, 25)
    # the disc covers 15 * 15 * pi / 4 pixels = that many / 5.12^2 cells
    assert ex.feature.sum() * (128 / 25) ** 2 == pytest.approx(np.pi * 7.5**2, rel=0.02)
    assert ex.pooled.shape == ex.aligned.shape == (14, 14)
    assert ex.iou_aligned > 0.8 and ex.iou_pooled < 0.6
    # masks stay inside the box they were pasted into
    for m in (ex.pooled_mask, ex.aligned_mask):
        ys, xs = np.nonzero(m)
        assert xs.min() >= 40 and xs.max() < 55 and ys.min() >= 40 and ys.max() < 55
