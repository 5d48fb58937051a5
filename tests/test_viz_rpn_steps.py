"""Figures of notebook 03's step-by-step view and the new figures of 03b and 04: they draw what
they are given, and FasterRCNN.inspect's steps are the proposal layer's and predict's."""

import numpy as np
import pytest

from rcnn_from_scratch.boxes import clip_boxes_to_image
from rcnn_from_scratch.datasets.shapes import make_shapes_sample
from rcnn_from_scratch.models.faster_rcnn import FasterRCNN, FasterRCNNConfig
from rcnn_from_scratch.proposals.anchors import AnchorGenerator
from rcnn_from_scratch.viz.anchors import anchor_names
from rcnn_from_scratch.viz.masks import plot_mask_channels, plot_mask_pasting
from rcnn_from_scratch.viz.roi import plot_roi_grids
from rcnn_from_scratch.viz.rpn_steps import (
    plot_objectness_map,
    plot_proposal_steps,
    plot_recall,
    plot_second_stage,
    plot_top_anchors,
)

IMAGE, TARGET = make_shapes_sample(5)
SIZES, RATIOS = (16.0, 32.0, 48.0), (0.5, 1.0, 2.0)
ANCHORS = AnchorGenerator((SIZES,), (RATIOS,))((128, 128), [(16, 16)])


def test_anchor_names_follow_the_generators_ratio_major_order():
    names = anchor_names(range(9, 18), SIZES, RATIOS)  # cell (0, 1): the same nine
    assert names[0] == "size 16, ratio 0.5" and names[4] == "size 32, ratio 1"
    w, h = ANCHORS[9 + 8, 2] - ANCHORS[9 + 8, 0], ANCHORS[9 + 8, 3] - ANCHORS[9 + 8, 1]
    assert names[8] == "size 48, ratio 2" and h > w and abs(np.sqrt(w * h) - 48) < 2


def test_step_figures_draw_one_panel_per_step_and_cap_the_boxes():
    fig = plot_proposal_steps(IMAGE, {"a": ANCHORS[:50], "b": ANCHORS[:5]}, show=20)
    assert [len(ax.patches) for ax in fig.axes] == [20, 5]
    fig = plot_top_anchors(IMAGE, ANCHORS[:4], ANCHORS[4:8], np.ones(4))
    left, right = fig.axes
    assert len(left.patches) == 4 and len(right.patches) == 8
    assert left.get_legend().get_texts()[0].get_text().startswith("size 16, ratio 0.5")
    with pytest.raises(ValueError, match="same length"):
        plot_top_anchors(IMAGE, ANCHORS[:4], ANCHORS[:3])


def test_objectness_map_shows_the_best_anchor_of_each_cell():
    logits = np.full(len(ANCHORS), -9.0)
    logits[9 * (3 * 16 + 5) + 4] = 9.0  # one anchor of cell (3, 5)
    fig = plot_objectness_map(IMAGE, logits, (16, 16), stride=8)
    shown = fig.axes[1].images[1].get_array()
    assert (
        shown.shape == (16, 16) and shown[3, 5] > 0.99 and np.delete(shown.ravel(), 53).max() < 0.01
    )


def test_recall_bars_carry_their_values():
    fig = plot_recall({"anchors": {0.5: 0.9, 0.7: 0.4}, "proposals": {0.5: 1.0, 0.7: 0.9}})
    heights = sorted(round(p.get_height(), 2) for p in fig.axes[0].patches)
    assert heights == [0.4, 0.9, 0.9, 1.0]


def test_second_stage_figure_draws_rois_refined_boxes_and_confident_detections():
    proposals = ANCHORS[:6]
    logits = np.zeros((6, 4))
    logits[:, 2] = 5.0
    detections = {"boxes": ANCHORS[:2], "labels": np.array([2, 1]), "scores": np.array([0.9, 0.2])}
    fig = plot_second_stage(
        IMAGE, proposals, np.repeat(proposals[:, None], 3, 1), logits, detections
    )
    assert [len(ax.patches) for ax in fig.axes] == [6, 6, 1]


def test_inspect_steps_are_the_proposal_layers_and_predicts():
    model = FasterRCNN(FasterRCNNConfig(channels=(4, 8, 8), hidden=16), seed=0)
    r = model.inspect(IMAGE)
    c = model.config
    assert len(r["top"]) == c.rpn_pre_nms_test and len(r["proposals"]) <= c.rpn_post_nms_test
    np.testing.assert_allclose(
        clip_boxes_to_image(r["decoded"], (128, 128)), r["candidates"], atol=1e-4
    )
    assert r["refined"].shape == (len(r["proposals"]), c.num_classes, 4)
    p = model.predict(IMAGE)
    np.testing.assert_array_equal(r["detections"]["boxes"], p["boxes"])


def test_roi_grids_draw_the_lectures_rule_beside_torchvisions_and_roialign():
    lecture, pool, align = plot_roi_grids().axes
    assert "2.93 -> 2" in lecture.get_title() and "4 x 4" in pool.get_title()


def test_mask_channel_rows_and_pasting_figure():
    boxes = TARGET["boxes"][:2]
    fig = plot_mask_channels([IMAGE, IMAGE], boxes, np.zeros((2, 3, 28, 28)), [1, 2])
    assert len(fig.axes) == 8
    with pytest.raises(ValueError, match="image"):
        plot_mask_channels([IMAGE], boxes, np.zeros((2, 3, 28, 28)), [1, 2])
    p = np.zeros((28, 28))
    p[7:21, 7:21] = 1
    fig = plot_mask_pasting(IMAGE, boxes[0], p)
    assert "pixels" in fig.axes[2].get_title()
    with pytest.raises(ValueError, match="probabilities"):
        plot_mask_pasting(IMAGE, boxes[0], np.zeros((28, 14)))
