"""The RPN loss over a pyramid: the single-level loss on the concatenated anchors, gradients split
back to their levels."""

import numpy as np
import pytest

from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error
from rcnn_from_scratch.proposals.rpn import rpn_loss, rpn_loss_over_levels
from rcnn_from_scratch.targets.rpn_targets import RPNTargets

SHAPES = [(2, 3, 4, 5), (2, 3, 2, 3), (2, 3, 1, 1)]  # three levels, A = 3


def targets(rng, total):
    out = []
    for _ in range(2):
        labels = rng.choice([-1.0, 0.0, 1.0], total).astype(np.float32)
        pos = (labels == 1) & (rng.random(total) < 0.8)
        neg = (labels == 0) & (rng.random(total) < 0.8)
        out.append(RPNTargets(labels, rng.standard_normal((total, 4)).astype(np.float32), pos, neg))
    return out


def outputs(rng):
    obj = [rng.standard_normal(s) for s in SHAPES]
    deltas = [rng.standard_normal((s[0], 4 * s[1], s[2], s[3])) for s in SHAPES]
    return obj, deltas


def test_one_level_is_the_single_level_loss():
    rng = np.random.default_rng(0)
    obj, deltas = outputs(rng)
    t = targets(rng, 3 * 4 * 5)
    one = rpn_loss(obj[0], deltas[0], t)
    levels = rpn_loss_over_levels(obj[:1], deltas[:1], t)
    assert levels.objectness == pytest.approx(one.objectness, rel=1e-12)
    assert levels.box_regression == pytest.approx(one.box_regression, rel=1e-12)
    np.testing.assert_allclose(levels.dobjectness[0], one.dobjectness, rtol=1e-12)
    np.testing.assert_allclose(levels.ddeltas[0], one.ddeltas, rtol=1e-12)


def test_levels_follow_the_anchor_order_location_by_location():
    # an anchor's loss term sits at (level, location, anchor): compare with a loop over anchors
    rng = np.random.default_rng(1)
    obj, deltas = outputs(rng)
    total = sum(s[1] * s[2] * s[3] for s in SHAPES)
    t = targets(rng, total)
    loss = rpn_loss_over_levels(obj, deltas, t)
    flat = [[], []]
    for n in range(2):
        for o in obj:
            _, A, h, w = o.shape
            flat[n] += [o[n, a, i, j] for i in range(h) for j in range(w) for a in range(A)]
    x = np.array(flat)
    y = np.stack([tt.labels for tt in t]).clip(0, 1)
    sampled = np.stack([tt.sampled_pos | tt.sampled_neg for tt in t])
    bce = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    assert loss.objectness == pytest.approx((bce * sampled).sum() / sampled.sum(), rel=1e-10)


def test_gradients_equal_numerical_gradients_on_every_level():
    rng = np.random.default_rng(2)
    obj, deltas = outputs(rng)
    t = targets(rng, sum(s[1] * s[2] * s[3] for s in SHAPES))
    loss = rpn_loss_over_levels(obj, deltas, t)

    def total(_=None):
        out = rpn_loss_over_levels(obj, deltas, t)
        return out.objectness + out.box_regression

    for lv in range(3):
        assert loss.dobjectness[lv].shape == obj[lv].shape
        assert relative_error(loss.dobjectness[lv], numerical_gradient(total, obj[lv])) < 1e-6
        assert relative_error(loss.ddeltas[lv], numerical_gradient(total, deltas[lv])) < 1e-6


def test_mismatched_levels_or_targets_are_value_errors():
    rng = np.random.default_rng(3)
    obj, deltas = outputs(rng)
    with pytest.raises(ValueError, match="one array per level"):
        rpn_loss_over_levels(obj, deltas[:2], targets(rng, 10))
    with pytest.raises(ValueError, match="anchors"):
        rpn_loss_over_levels(obj, deltas, targets(rng, 10))
