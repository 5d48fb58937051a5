"""Losses: values by hand, gradients against numerical ones, stability, PyTorch parity."""

import numpy as np
import pytest

from rcnn_from_scratch.nn import binary_cross_entropy_with_logits, smooth_l1, softmax_cross_entropy
from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error


def grad_error(fn, x):
    _, analytic = fn(x)
    return relative_error(analytic, numerical_gradient(lambda: fn(x)[0], x))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_gradient_with_weights_and_ignored_labels(reduction):
    rng = np.random.default_rng(0)
    labels = np.array([0, 2, -1, 1, 3])
    w = rng.random(5)
    err = grad_error(
        lambda z: softmax_cross_entropy(z, labels, weights=w, reduction=reduction),
        rng.standard_normal((5, 4)),
    )
    assert err < 1e-6


def test_softmax_cross_entropy_by_hand_and_stable_for_huge_logits():
    loss, _ = softmax_cross_entropy(np.log([[0.25, 0.75]]), [1])
    assert loss == pytest.approx(-np.log(0.75))
    loss, grad = softmax_cross_entropy(np.array([[1000.0, -1000.0]]), [1])
    assert loss == pytest.approx(2000.0) and np.all(np.isfinite(grad))


def test_a_loss_over_nothing_is_zero_not_nan():
    loss, grad = softmax_cross_entropy(np.zeros((2, 3)), [-1, -1])
    assert loss == 0 and not grad.any()
    loss, grad = softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int))
    assert loss == 0 and grad.shape == (0, 3)
    assert smooth_l1(np.zeros((0, 4)), np.zeros((0, 4)), reduction="mean")[0] == 0
    assert binary_cross_entropy_with_logits(np.zeros(3), np.ones(3), weights=np.zeros(3))[0] == 0


@pytest.mark.parametrize("beta", [1.0, 1 / 9, 0.0])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_smooth_l1_gradient(beta, reduction):
    rng = np.random.default_rng(1)
    target = rng.standard_normal((6, 4))
    pred = target + rng.choice([-1, 1], (6, 4)) * rng.uniform(0.05, 2.0, (6, 4))
    pred[np.abs(np.abs(pred - target) - beta) < 1e-3] += 0.01  # off the kink at |x| = beta
    weights = rng.integers(0, 2, (6, 1))
    err = grad_error(lambda p: smooth_l1(p, target, beta, weights, reduction), pred)
    assert err < 1e-6


def test_smooth_l1_is_the_fast_rcnn_formula():
    loss, _ = smooth_l1(np.array([0.5, 3.0]), np.zeros(2), beta=1.0)
    assert loss == pytest.approx(0.5 * 0.25 + 2.5)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits_gradient(reduction):
    rng = np.random.default_rng(2)
    t = rng.random((4, 5))
    w = rng.random((4, 1))
    err = grad_error(
        lambda x: binary_cross_entropy_with_logits(x, t, w, reduction), rng.standard_normal((4, 5))
    )
    assert err < 1e-6


def test_bce_with_logits_is_exact_for_huge_logits():
    loss, grad = binary_cross_entropy_with_logits(np.array([80.0, -80.0]), np.array([0.0, 1.0]))
    assert loss == pytest.approx(80.0)
    np.testing.assert_allclose(grad, [0.5, -0.5])


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="labels must lie"):
        softmax_cross_entropy(np.zeros((1, 3)), [5])
    with pytest.raises(ValueError, match="one shape"):
        smooth_l1(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        smooth_l1(np.zeros(3), np.zeros(3), reduction="max")


def test_losses_match_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    z, labels = rng.standard_normal((6, 4)), np.array([0, 1, 2, 3, -1, 1])
    ours = softmax_cross_entropy(z, labels)[0]
    assert ours == pytest.approx(
        F.cross_entropy(torch.tensor(z), torch.tensor(labels), ignore_index=-1).item()
    )
    p, t = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    theirs = F.smooth_l1_loss(torch.tensor(p), torch.tensor(t), beta=1 / 9, reduction="sum").item()
    assert smooth_l1(p, t, 1 / 9)[0] == pytest.approx(theirs)
    x, y = rng.standard_normal(7) * 30, rng.random(7)
    theirs = F.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y)).item()
    assert binary_cross_entropy_with_logits(x, y)[0] == pytest.approx(theirs)
