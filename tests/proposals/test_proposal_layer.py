"""The proposal layer over pyramid levels: the per-level top-k cut, NMS by level, the stable top-k,
the single-level path against the old algorithm, and torchvision's filter_proposals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcnn_from_scratch.box_coder import BoxCoder
from rcnn_from_scratch.boxes import clip_boxes_to_image, nms, remove_small_boxes
from rcnn_from_scratch.proposals.anchors import AnchorGenerator
from rcnn_from_scratch.proposals.proposal_layer import (
    ProposalConfig,
    proposals_by_level,
    select_proposals,
    top_k,
)


def _disjoint_boxes(n, size=8.0, gap=20.0):
    x = np.arange(n, dtype=np.float32) * gap
    return np.stack([x, np.zeros(n, np.float32), x + size, np.full(n, size, np.float32)], axis=1)


def test_top_k_is_cut_per_level_not_over_all_anchors():
    anchors = _disjoint_boxes(5)
    objectness = np.array([5, 4, 3, 1, 0], np.float32)  # level 0: rows 0-2, level 1: rows 3-4
    cfg = ProposalConfig(pre_nms_top_n=2, post_nms_top_n=10)
    boxes, scores, levels = select_proposals(
        objectness, np.zeros((5, 4)), anchors, (100, 200), cfg,
        num_anchors_per_level=[3, 2], return_levels=True,
    )  # fmt: skip
    # a global top-4 would keep row 2 (logit 3) and drop row 4 (logit 0)
    np.testing.assert_array_equal(boxes, anchors[[0, 1, 3, 4]])
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-objectness[[0, 1, 3, 4]])), rtol=1e-6)
    assert levels.tolist() == [0, 0, 1, 1] and levels.dtype == np.int64


def test_nms_does_not_suppress_across_levels():
    box = [10, 10, 50, 50]
    anchors = np.array([box, box, box, box], np.float32)
    objectness = np.array([2.0, 1.0, 1.5, 0.5], np.float32)
    cfg = ProposalConfig(pre_nms_top_n=10, post_nms_top_n=10)
    record = proposals_by_level(objectness, np.zeros((4, 4)), anchors, (64, 64), [2, 2], cfg)
    # one survivor per level: the identical boxes of the other level do not count
    assert record.levels.tolist() == [0, 1]
    np.testing.assert_allclose(record.scores, 1 / (1 + np.exp(-np.array([2.0, 1.5]))), rtol=1e-6)
    assert [s.tolist() for s in record.survivors] == [[0], [0]]
    one_level = select_proposals(objectness, np.zeros((4, 4)), anchors, (64, 64), cfg)
    assert len(one_level[0]) == 1


def test_record_lists_candidates_and_survivors_of_every_level():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 200, (600, 2))
    anchors = np.hstack([xy, xy + rng.uniform(4, 40, (600, 2))]).astype(np.float32)
    objectness = rng.normal(size=600).astype(np.float32)
    deltas = 0.2 * rng.normal(size=(600, 4)).astype(np.float32)
    sizes = [300, 200, 60, 40]
    cfg = ProposalConfig(pre_nms_top_n=100, post_nms_top_n=120)
    r = proposals_by_level(objectness, deltas, anchors, (180, 220), sizes, cfg)
    assert [len(c) for c in r.candidates] == [100, 100, 60, 40]
    start = np.cumsum([0] + sizes)
    coder = BoxCoder((1, 1, 1, 1))
    for lv in range(4):
        # the level's candidates are its own top anchors, decoded and clipped
        mine = slice(start[lv], start[lv + 1])
        order = np.argsort(-objectness[mine], kind="stable")[: len(r.candidates[lv])] + start[lv]
        expected = clip_boxes_to_image(
            coder.decode_single(deltas[order], anchors[order]), (180, 220)
        )
        np.testing.assert_allclose(r.candidates[lv], expected, atol=1e-4)
        # its survivors are exactly one NMS of its own candidates
        c, s = r.candidates[lv], r.candidate_scores[lv]
        ok = remove_small_boxes(c, cfg.min_size)
        assert r.survivors[lv].tolist() == sorted(ok[nms(c[ok], s[ok], 0.7)].tolist())
    assert len(r.boxes) == 120 and np.all(np.diff(r.scores) <= 0)
    for lv in range(4):  # every final proposal is a survivor of its own level
        picked = r.candidates[lv][r.survivors[lv]]
        for b in r.boxes[r.levels == lv]:
            assert np.any(np.all(picked == b, axis=1))


def _old_select_proposals(objectness, deltas, anchors, image_size, cfg):
    """The single-level algorithm as it was: a full stable sort, then plain NMS."""
    top = np.argsort(-objectness, kind="stable")[: cfg.pre_nms_top_n]
    boxes = clip_boxes_to_image(BoxCoder((1, 1, 1, 1)).decode_single(deltas[top], anchors[top]),
                                image_size)  # fmt: skip
    scores = 1 / (1 + np.exp(-objectness[top].astype(np.float64)))
    keep = remove_small_boxes(boxes, cfg.min_size)
    keep = keep[scores[keep] >= cfg.score_thresh]
    boxes, scores = boxes[keep], scores[keep]
    keep = nms(boxes, scores, cfg.nms_thresh)[: cfg.post_nms_top_n]
    return boxes[keep], scores[keep]


@pytest.mark.parametrize("seed", range(3))
def test_single_level_is_the_old_algorithm(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (500, 2))
    anchors = np.hstack([xy, xy + rng.uniform(2, 30, (500, 2))]).astype(np.float32)
    objectness = rng.integers(-3, 4, 500).astype(np.float32)  # many ties: the stable order counts
    deltas = 0.3 * rng.normal(size=(500, 4)).astype(np.float32)
    cfg = ProposalConfig(pre_nms_top_n=300, post_nms_top_n=80, score_thresh=0.1)
    boxes, scores = select_proposals(objectness, deltas, anchors, (110, 120), cfg)
    old_boxes, old_scores = _old_select_proposals(objectness, deltas, anchors, (110, 120), cfg)
    np.testing.assert_array_equal(boxes, old_boxes)
    np.testing.assert_allclose(scores, old_scores, rtol=1e-6)
    same = select_proposals(objectness, deltas, anchors, (110, 120), cfg,
                            num_anchors_per_level=[500])  # fmt: skip
    np.testing.assert_array_equal(same[0], boxes)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 60), st.integers(0, 70), st.integers(0, 2**31 - 1))
def test_top_k_equals_a_stable_full_sort(n, k, seed):
    values = np.random.default_rng(seed).integers(0, 6, n).astype(np.float32)  # many ties
    np.testing.assert_array_equal(top_k(values, k), np.argsort(-values, kind="stable")[:k])


def test_zero_anchors_and_empty_levels_give_empty_results():
    r = proposals_by_level(np.zeros(0), np.zeros((0, 4)), np.zeros((0, 4)), (10, 10), [0, 0])
    assert r.boxes.shape == (0, 4) and r.scores.shape == (0,) and r.levels.shape == (0,)
    assert [c.shape for c in r.candidates] == [(0, 4), (0, 4)]
    r = proposals_by_level(np.ones(2), np.zeros((2, 4)), _disjoint_boxes(2), (50, 50), [0, 2])
    assert r.levels.tolist() == [1, 1] and r.candidates[0].shape == (0, 4)


@pytest.mark.parametrize(
    "levels, message", [([3, 3], "summing to the 5"), ([6, -1], "non-negative"), ("ab", "ints")]
)
def test_bad_level_sizes_give_a_clear_value_error(levels, message):
    with pytest.raises(ValueError, match=message):
        select_proposals(np.zeros(5), np.zeros((5, 4)), np.zeros((5, 4)), (10, 10),
                         num_anchors_per_level=levels)  # fmt: skip


def test_non_finite_logits_give_a_clear_value_error():
    with pytest.raises(ValueError, match="objectness must be finite"):
        select_proposals([0.0, np.nan], np.zeros((2, 4)), _disjoint_boxes(2), (10, 10))


def test_five_levels_match_torchvision_filter_proposals():
    torch = pytest.importorskip("torch")
    rpn_mod = pytest.importorskip("torchvision.models.detection.rpn")
    anchor_utils = pytest.importorskip("torchvision.models.detection.anchor_utils")
    grids = [(200, 272), (100, 136), (50, 68), (25, 34), (13, 17)]
    sizes, ratios = ((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5
    anchors = AnchorGenerator(sizes, ratios)((800, 1088), grids)
    per_level = [3 * h * w for h, w in grids]
    A = len(anchors)
    rng = np.random.default_rng(0)
    # distinct logits spaced well above a float32 ulp of their sigmoid: no ties to order
    objectness = rng.permutation(np.linspace(-4, 4, A)).astype(np.float32)
    deltas = (0.3 * rng.normal(size=(A, 4))).astype(np.float32)
    image_size = (800, 1066)
    cfg = ProposalConfig(pre_nms_top_n=1000, post_nms_top_n=1000, nms_thresh=0.7)

    rpn = rpn_mod.RegionProposalNetwork(
        anchor_utils.AnchorGenerator(sizes, ratios), rpn_mod.RPNHead(8, 3),
        0.7, 0.3, 256, 0.5, dict(training=2000, testing=1000), dict(training=2000, testing=1000),
        0.7,
    ).eval()  # fmt: skip
    proposals = rpn.box_coder.decode(torch.from_numpy(deltas), [torch.from_numpy(anchors)])
    with torch.no_grad():
        tboxes, tscores = rpn.filter_proposals(
            proposals.view(1, -1, 4), torch.from_numpy(objectness)[None], [image_size], per_level
        )
    boxes, scores, levels = select_proposals(
        objectness, deltas, anchors, image_size, cfg, num_anchors_per_level=per_level,
        return_levels=True,
    )  # fmt: skip
    tboxes, tscores = tboxes[0].numpy(), tscores[0].numpy()
    assert len(boxes) == len(tboxes) == 1000
    np.testing.assert_allclose(boxes, tboxes, atol=1e-4)
    np.testing.assert_allclose(scores, tscores, atol=1e-6)
    assert set(levels.tolist()) == {0, 1, 2, 3, 4}
