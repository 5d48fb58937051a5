"""RPN and RoI targets on toy images worked by hand, and the proposal layer's order."""

import numpy as np
import pytest

from rcnn_from_scratch.box_coder import BoxCoder
from rcnn_from_scratch.proposals.proposal_layer import ProposalConfig, select_proposals
from rcnn_from_scratch.targets.roi_targets import sample_roi_targets
from rcnn_from_scratch.targets.rpn_targets import assign_rpn_targets

RNG = np.random.default_rng


def test_rpn_targets_on_a_toy_image():
    gt = np.array([[10, 10, 30, 30]], np.float32)
    anchors = np.array(
        [
            [10, 10, 30, 30],  # IoU 1: positive
            [12, 10, 32, 30],  # IoU 0.82: positive
            [20, 10, 40, 30],  # IoU 0.33: ignored
            [50, 50, 70, 70],  # IoU 0: negative
        ],
        np.float32,
    )
    t = assign_rpn_targets(anchors, gt, RNG(0))
    assert t.labels.tolist() == [1, 1, -1, 0]
    np.testing.assert_allclose(t.deltas[0], 0, atol=1e-6)
    np.testing.assert_allclose(t.deltas[1], BoxCoder((1, 1, 1, 1)).encode(gt, anchors[1:2])[0])
    assert t.sampled_pos.tolist() == [True, True, False, False]
    assert t.sampled_neg.tolist() == [False, False, False, True]


def test_rpn_targets_give_each_object_its_best_anchor_even_below_threshold():
    gt = np.array([[0, 0, 10, 10]], np.float32)
    anchors = np.array([[0, 0, 20, 20], [0, 0, 40, 40]], np.float32)  # IoU 0.25 and 0.0625
    assert assign_rpn_targets(anchors, gt, RNG(0)).labels.tolist() == [1, 0]


def test_rpn_targets_without_objects_are_all_background():
    t = assign_rpn_targets(np.array([[0, 0, 8, 8]] * 3, np.float32), np.zeros((0, 4)), RNG(0))
    assert t.labels.tolist() == [0, 0, 0] and t.sampled_neg.all() and not t.sampled_pos.any()


def test_roi_targets_add_the_ground_truth_and_label_by_class():
    gt = np.array([[10, 10, 30, 30], [60, 60, 90, 90]], np.float32)
    proposals = np.array([[11, 11, 31, 31], [0, 0, 5, 5], [40, 40, 50, 50]], np.float32)
    t = sample_roi_targets(proposals, gt, [2, 3], RNG(0), batch_size_per_image=16)
    fg = t.labels > 0
    assert sorted(t.labels[fg].tolist()) == [2, 2, 3]  # a proposal and the two ground truths
    assert (t.labels == 0).sum() == 2
    np.testing.assert_allclose(t.deltas[~fg], 0)
    assert np.all(t.matched_gt[~fg] == -1)


def test_roi_targets_with_the_fast_rcnn_background_floor_ignore_near_zero_overlap():
    gt = np.array([[10, 10, 30, 30]], np.float32)
    proposals = np.array([[0, 0, 5, 5], [20, 20, 40, 40]], np.float32)  # IoU 0 and 0.14
    t = sample_roi_targets(proposals, gt, [1], RNG(0), bg_iou_low=0.1)
    assert sorted(t.labels.tolist()) == [0, 1]
    np.testing.assert_allclose(t.proposals[t.labels == 0], proposals[1:2])


def test_roi_targets_cap_the_foreground_fraction():
    gt = np.array([[10, 10, 30, 30]], np.float32)
    proposals = np.repeat(gt, 100, axis=0) + RNG(1).uniform(-1, 1, (100, 4)).astype(np.float32)
    proposals = np.vstack([proposals, np.array([[60, 60, 70, 70]] * 100, np.float32)])
    t = sample_roi_targets(proposals, gt, [1], RNG(0), batch_size_per_image=64)
    assert (t.labels > 0).sum() == 16 and (t.labels == 0).sum() == 48


def test_proposal_layer_decodes_clips_filters_then_suppresses_in_that_order():
    anchors = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [40, 40, 60, 60], [-20, -20, -10, -10]], "f4"
    )
    objectness = np.array([3.0, 2.0, 1.0, 5.0], np.float32)
    deltas = np.zeros((4, 4), np.float32)
    cfg = ProposalConfig(pre_nms_top_n=3, post_nms_top_n=10, nms_thresh=0.5)
    boxes, scores = select_proposals(objectness, deltas, anchors, (50, 50), cfg)
    # top-3 drops the anchor at score 1; the highest one lies outside and clips to an empty box,
    # which is removed before NMS; NMS then drops the second of the two overlapping anchors
    np.testing.assert_allclose(boxes, [[0, 0, 10, 10]])
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-3.0))], rtol=1e-6)


def test_proposal_layer_keeps_post_nms_top_n_sorted():
    rng = RNG(0)
    xy = rng.uniform(0, 100, (300, 2))
    anchors = np.hstack([xy, xy + 8]).astype(np.float32)
    objectness = rng.normal(size=300).astype(np.float32)
    boxes, scores = select_proposals(
        objectness, np.zeros((300, 4), np.float32), anchors, (128, 128),
        ProposalConfig(pre_nms_top_n=200, post_nms_top_n=50),
    )  # fmt: skip
    assert len(boxes) == 50 and np.all(np.diff(scores) <= 0)


def test_proposal_layer_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one row per anchor"):
        select_proposals(np.zeros(3), np.zeros((2, 4)), np.zeros((3, 4)), (10, 10))
