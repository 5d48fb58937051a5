"""Figures of notebooks 00b, 01 and 02: boxes at a given IoU, the box encoding, stage costs."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from rcnn_from_scratch.box_coder import BoxCoder
from rcnn_from_scratch.boxes import box_iou
from rcnn_from_scratch.viz.boxes import boxes_at_iou, plot_box_encoding, plot_iou_thresholds
from rcnn_from_scratch.viz.costs import PAPER_SECONDS, plot_stage_costs


@pytest.mark.parametrize("box", [[10, 20, 50, 40], [0.5, 0.5, 3.0, 9.0]])
def test_boxes_at_iou_have_exactly_the_requested_iou(box):
    ious = [0.1, 0.3, 0.5, 0.7, 1.0]
    shifted = boxes_at_iou(box, ious)
    np.testing.assert_allclose(box_iou([box], shifted)[0], ious, rtol=1e-6)


def test_boxes_at_iou_rejects_values_outside_zero_to_one():
    with pytest.raises(ValueError, match="ious"):
        boxes_at_iou([0, 0, 10, 10], [0.0])


def test_iou_threshold_panels_state_the_iou_they_draw():
    fig = plot_iou_thresholds([10, 10, 50, 40])
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split("\n")[0] for t in titles] == ["IoU = 0.30", "IoU = 0.50", "IoU = 0.70"]


def test_box_encoding_title_matches_the_box_coder():
    anchor, target = [16, 16, 48, 80], [20, 30, 60, 70]
    fig = plot_box_encoding(anchor, target)
    deltas = BoxCoder((1, 1, 1, 1)).encode_single(np.array([target]), np.array([anchor]))[0]
    expected = f"t_x = {deltas[0]:.3f}, t_y = {deltas[1]:.3f}\nt_w = {deltas[2]:.3f}, t_h = {deltas[3]:.3f}"
    assert fig.axes[0].get_title() == expected


def test_stage_costs_draw_one_bar_per_stage_and_part():
    times = {"A": {"proposals": 0.1, "features": 0.2}, "B": {"proposals": 0.01, "features": 0.3}}
    fig = plot_stage_costs(times, paper=PAPER_SECONDS)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches)
    assert heights == [10.0, 100.0, 200.0, 300.0]  # milliseconds
    assert len(fig.axes[1].patches) == sum(len(t) for t in PAPER_SECONDS.values())
    assert fig.axes[0].get_yscale() == "log"


def test_stage_costs_reject_non_positive_times():
    with pytest.raises(ValueError, match="times"):
        plot_stage_costs({"A": {"proposals": 0.0}})
    with pytest.raises(ValueError, match="unit"):
        plot_stage_costs({"A": {"proposals": 1.0}}, unit="h")
