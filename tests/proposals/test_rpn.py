"""The RPN head: its outputs line up with the anchors, and its loss's gradients are right."""

import numpy as np
import pytest

from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error
from rcnn_from_scratch.proposals.anchors import AnchorGenerator
from rcnn_from_scratch.proposals.rpn import RPNHead, flatten_rpn_outputs, rpn_loss
from rcnn_from_scratch.targets.rpn_targets import assign_rpn_targets


def test_flattened_outputs_follow_the_anchors_order():
    # anchors are listed location by location (row-major), A per location; so must the outputs be
    gen = AnchorGenerator(((8.0, 16.0),), ((0.5, 1.0, 2.0),))
    A = gen.num_anchors_per_location()[0]
    h, w = 3, 4
    anchors = gen((24, 32), [(h, w)])
    obj = np.zeros((1, A, h, w))
    deltas = np.zeros((1, 4 * A, h, w))
    for a in range(A):
        for i in range(h):
            for j in range(w):
                obj[0, a, i, j] = 1000 * i + 10 * j + a
                deltas[0, 4 * a : 4 * a + 4, i, j] = obj[0, a, i, j] + np.arange(4) / 10
    flat_obj, flat_deltas = flatten_rpn_outputs(obj, deltas)
    assert flat_obj.shape == (1, len(anchors)) and flat_deltas.shape == (1, len(anchors), 4)
    for k, anchor in enumerate(anchors):
        i, j, a = k // (w * A), (k // A) % w, k % A
        cx, cy = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
        assert (cx, cy) == pytest.approx((8 * j, 8 * i), abs=0.5)  # anchor k sits on cell (i, j)
        assert flat_obj[0, k] == 1000 * i + 10 * j + a
        np.testing.assert_allclose(flat_deltas[0, k], flat_obj[0, k] + np.arange(4) / 10)


def test_rpn_loss_gradients_through_the_head_equal_numerical_ones():
    rng = np.random.default_rng(0)
    head = RPNHead(3, 3, rng=rng).to(np.float64)
    x = rng.standard_normal((2, 3, 4, 4))
    gen = AnchorGenerator(((6.0,),), ((0.5, 1.0, 2.0),))
    anchors = gen((16, 16), [(4, 4)])
    gts = [np.array([[1, 1, 7, 8]], np.float32), np.array([[6, 5, 13, 10], [0, 9, 5, 15]])]
    targets = [
        assign_rpn_targets(anchors, g, np.random.default_rng(n), 16) for n, g in enumerate(gts)
    ]

    def total(_=None) -> float:
        out = rpn_loss(*head(x), targets)
        return out.objectness + out.box_regression

    head.zero_grad()
    out = rpn_loss(*head(x), targets)
    assert out.box_regression > 0 and out.objectness > 0
    dx = head.backward((out.dobjectness, out.ddeltas))
    assert relative_error(dx, numerical_gradient(total, x)) < 1e-6
    analytic = {n: p.grad.copy() for n, p in head.named_parameters()}
    for name, p in head.named_parameters():
        assert relative_error(analytic[name], numerical_gradient(total, p.data)) < 1e-6, name


def test_rpn_loss_counts_only_sampled_anchors():
    anchors = np.array([[0, 0, 10, 10], [40, 40, 50, 50], [0, 0, 11, 10]], np.float32)
    t = assign_rpn_targets(anchors, np.array([[0, 0, 10, 10]]), np.random.default_rng(0), 2)
    obj = np.array([[[[5.0]], [[-5.0]], [[7.0]]]])  # (1, A=3, 1, 1): one location, three anchors
    out = rpn_loss(obj, np.zeros((1, 12, 1, 1)), [t])
    sampled = t.sampled_pos | t.sampled_neg
    assert sampled.sum() == 2
    assert np.count_nonzero(out.dobjectness) == 2
    assert np.all(out.dobjectness.reshape(-1)[~sampled] == 0)
