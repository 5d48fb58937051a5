"""Figures of notebook 00 and the demo: they show the right numbers and reject bad input."""

import numpy as np
import pytest

from rcnn_from_scratch.bilinear import linear_interpolation_weights
from rcnn_from_scratch.viz.boxes import plot_iou, plot_nms
from rcnn_from_scratch.viz.interpolation import (
    plot_bilinear_weights,
    plot_interpolation_1d,
    plot_interpolation_2d,
    plot_interpolation_error,
)


def test_the_weights_figure_labels_the_bilinear_weights():
    y, x = 0.3, 0.65
    labels = sorted(
        float(t.get_text())
        for t in plot_bilinear_weights(y, x).axes[0].texts[:-1]
        if t.get_text()[0].isdigit()
    )
    wy = linear_interpolation_weights(y, 2)
    wx = linear_interpolation_weights(x, 2)
    expected = sorted(
        round(float(a * b), 3) for a in (wy.w_lo, wy.w_hi) for b in (wx.w_lo, wx.w_hi)
    )
    assert labels == expected


def test_the_weights_figure_rejects_a_point_outside_the_square():
    with pytest.raises(ValueError, match="unit square"):
        plot_bilinear_weights(1.5, 0.5)


def test_the_nms_figure_titles_the_number_kept():
    boxes = np.array([[2, 2, 20, 20], [3, 3, 21, 21], [30, 30, 40, 40]], np.float32)
    fig = plot_nms(np.zeros((48, 48, 3), np.uint8), boxes, [0.9, 0.8, 0.7], 0.5)
    assert "2 kept" in fig.axes[1].get_title()


def test_the_iou_figure_titles_the_iou():
    assert plot_iou([0, 0, 2, 2], [1, 0, 3, 2]).axes[0].get_title() == "IoU = 0.333"


def test_the_other_interpolation_figures_draw():
    for fig in (plot_interpolation_1d(), plot_interpolation_2d(), plot_interpolation_error()):
        assert fig.axes
