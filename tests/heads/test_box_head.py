"""The box head and Fast R-CNN's multi-task loss: gradients through both tasks, and the loss's rules."""

import numpy as np
import pytest

from rcnn_from_scratch.heads.box_head import BoxHead, fast_rcnn_loss
from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error


def test_multi_task_loss_gradients_through_the_head_equal_numerical_ones():
    rng = np.random.default_rng(0)
    head = BoxHead(2 * 3 * 3, 8, num_classes=3, rng=rng).to(np.float64)
    x = rng.standard_normal((6, 2, 3, 3))
    labels = np.array([0, 1, 3, 0, 2, 2])
    targets = rng.standard_normal((6, 4))

    def total(_=None) -> float:
        cls, box = head(x)
        out = fast_rcnn_loss(cls, box, labels, targets, beta=1 / 9)
        return out.classification + out.box_regression

    head.zero_grad()
    cls, box = head(x)
    loss = fast_rcnn_loss(cls, box, labels, targets, beta=1 / 9)
    dx = head.backward((loss.dcls, loss.dbox))
    assert relative_error(dx, numerical_gradient(total, x)) < 1e-6
    analytic = {n: p.grad.copy() for n, p in head.named_parameters()}
    for name, p in head.named_parameters():
        assert relative_error(analytic[name], numerical_gradient(total, p.data)) < 1e-6, name


def test_only_the_true_class_deltas_of_foreground_rois_are_trained():
    cls = np.zeros((3, 4))
    box = np.ones((3, 16))
    loss = fast_rcnn_loss(cls, box, [0, 2, 0], np.zeros((3, 4)), beta=1.0)
    d = loss.dbox.reshape(3, 4, 4)
    assert np.count_nonzero(d) == 4 and np.all(d[1, 2] != 0)
    assert loss.box_regression == pytest.approx(4 * 0.5 / 3)  # smooth L1 of 1 is 0.5, / 3 RoIs


def test_empty_batch_gives_zero_loss():
    loss = fast_rcnn_loss(np.zeros((0, 4)), np.zeros((0, 16)), np.zeros(0, int), np.zeros((0, 4)))
    assert loss.classification == 0 and loss.box_regression == 0


def test_parameter_names_follow_torchvision():
    names = [n for n, _ in BoxHead(10, 4, 3).named_parameters()]
    assert names == [
        "fc6.1.weight", "fc6.1.bias", "fc7.0.weight", "fc7.0.bias",
        "cls_score.weight", "cls_score.bias", "bbox_pred.weight", "bbox_pred.bias",
    ]  # fmt: skip
