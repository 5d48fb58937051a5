"""IoU matching and fg/bg sampling: hand-made cases, properties and torchvision parity."""

import numpy as np
import pytest

from rcnn_from_scratch.boxes import box_iou
from rcnn_from_scratch.targets.matcher import Matcher
from rcnn_from_scratch.targets.sampler import BalancedPositiveNegativeSampler


def test_matcher_thresholds_give_foreground_ignored_and_background():
    q = np.array([[0.8, 0.5, 0.2, 0.0], [0.1, 0.6, 0.29, 0.75]])
    m = Matcher(0.7, 0.3)(q)
    assert m.tolist() == [0, -2, -1, 1]


def test_low_quality_matches_give_each_ground_truth_its_best_prediction_ties_included():
    q = np.array([[0.5, 0.5, 0.1], [0.2, 0.1, 0.4]])
    m = Matcher(0.7, 0.3, allow_low_quality_matches=True)(q)
    assert m.tolist() == [0, 0, 1]
    assert Matcher(0.7, 0.3)(q).tolist() == [-2, -2, -2]


def test_matcher_without_ground_truth_calls_everything_background():
    assert Matcher(0.7, 0.3)(np.zeros((0, 5))).tolist() == [-1] * 5
    assert Matcher(0.7, 0.3)(np.zeros((2, 0))).shape == (0,)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("low_quality", [False, True])
def test_matcher_matches_torchvision(seed, low_quality):
    torch = pytest.importorskip("torch")
    det_utils = pytest.importorskip("torchvision.models.detection._utils")
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 50, (30, 2))
    boxes = np.hstack([xy, xy + rng.uniform(5, 30, (30, 2))]).astype(np.float32)
    q = box_iou(boxes[:4], boxes[4:])
    theirs = det_utils.Matcher(0.5, 0.3, low_quality)(torch.from_numpy(q)).numpy()
    np.testing.assert_array_equal(Matcher(0.5, 0.3, low_quality)(q), theirs)


@pytest.mark.parametrize("num_pos, num_neg", [(100, 1000), (3, 1000), (100, 5), (0, 0)])
def test_sampler_caps_positives_and_fills_with_negatives(num_pos, num_neg):
    labels = np.concatenate([np.full(num_pos, 2), np.zeros(num_neg, int), np.full(7, -1)])
    pos, neg = BalancedPositiveNegativeSampler(256, 0.5)(labels, np.random.default_rng(0))
    assert pos.sum() == min(num_pos, 128)
    assert neg.sum() == min(num_neg, 256 - pos.sum())
    assert not np.any(pos & neg)
    assert np.all(labels[pos] >= 1) and np.all(labels[neg] == 0)


def test_sampler_is_reproducible_with_a_seed():
    labels = np.random.default_rng(1).integers(-1, 3, 2000)
    sampler = BalancedPositiveNegativeSampler(512, 0.25)
    a = sampler(labels, np.random.default_rng(5))
    b = sampler(labels, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
