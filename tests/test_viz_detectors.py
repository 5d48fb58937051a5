"""Figures of notebooks 03 and 04: they draw what they are given."""

import numpy as np

from rcnn_from_scratch.datasets.shapes import make_shapes_sample
from rcnn_from_scratch.proposals.anchors import AnchorGenerator
from rcnn_from_scratch.roi.worked_example import mask_through_roi
from rcnn_from_scratch.targets.rpn_targets import assign_rpn_targets
from rcnn_from_scratch.viz.anchors import plot_anchor_labels, plot_anchors, plot_rpn_proposals
from rcnn_from_scratch.viz.masks import (
    plot_mask_channels,
    plot_mask_targets,
    plot_mask_through_roi,
    plot_results,
)  # fmt: skip

IMAGE, TARGET = make_shapes_sample(5)
ANCHORS = AnchorGenerator(((16.0, 32.0, 48.0),), ((0.5, 1.0, 2.0),))((128, 128), [(16, 16)])


def test_anchors_figure_shows_one_cells_nine_anchors_and_every_centre():
    fig = plot_anchors(IMAGE, ANCHORS, (16, 16), stride=8, location=(3, 5))
    left, right = fig.axes
    assert len(left.patches) == 9 and "(3, 5)" in left.get_title()
    (centres,) = right.lines
    assert len(centres.get_xdata()) == 256


def test_anchor_labels_figure_draws_the_sampled_positives():
    t = assign_rpn_targets(ANCHORS, TARGET["boxes"], np.random.default_rng(0))
    ax = plot_anchor_labels(IMAGE, ANCHORS, t, max_negatives=10).axes[0]
    assert len(ax.patches) == int(t.sampled_pos.sum()) + 10


def test_rpn_proposals_figure_caps_what_it_shows():
    fig = plot_rpn_proposals(IMAGE, ANCHORS[:80], ANCHORS[:30], show=50)
    assert [len(ax.patches) for ax in fig.axes] == [50, 30]


def test_mask_figures_have_one_panel_per_roi_or_channel():
    boxes = TARGET["boxes"]
    targets = np.zeros((len(boxes), 28, 28))
    assert len(plot_mask_targets(IMAGE, boxes, targets, TARGET["labels"]).axes) == 2 * len(boxes)
    assert len(plot_mask_channels(IMAGE, boxes[0], np.zeros((3, 28, 28)), 2).axes) == 4
    assert len(plot_mask_through_roi(mask_through_roi()).axes) == 4
    preds = [{**TARGET, "scores": np.ones(len(boxes), np.float32)}] * 3
    fig = plot_results([(IMAGE, TARGET)] * 3, preds, columns=2, titles=["a", "b", "c"])
    assert len(fig.axes) == 4 and fig.axes[2].get_title() == "c"
