"""Losses: values by hand, gradients against numerical ones, stability, PyTorch parity."""

import numpy as np
import pytest

from rcnn_from_scratch.nn import binary_cross_entropy_with_logits, smooth_l1, softmax_cross_entropy
from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error


def grad_error(fn, x):
    _, analytic = fn(x)
    return relative_error(analytic, numerical_gradient(lambda v: fn(v)[0], x))


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
    loss, grad = smooth_l1(np.array([0.5, -3.0]), np.zeros(2), beta=1.0, reduction="sum")
    assert loss == pytest.approx(0.5 * 0.25 + 2.5)
    np.testing.assert_allclose(grad, [0.5, -1.0])
    loss, _ = smooth_l1(np.array([0.5, -3.0]), np.zeros(2), beta=0.5, reduction="mean")
    assert loss == pytest.approx((0.5 - 0.25 + 3.0 - 0.25) / 2)  # |x| = beta is on the linear side


def test_smooth_l1_is_continuous_at_beta():
    beta = 1 / 9
    below = smooth_l1(np.array([beta * (1 - 1e-9)]), np.zeros(1), beta)[0]
    above = smooth_l1(np.array([beta * (1 + 1e-9)]), np.zeros(1), beta)[0]
    assert below == pytest.approx(above, abs=1e-9)


def test_softmax_cross_entropy_mean_is_the_weighted_average():
    rng = np.random.default_rng(4)
    z, labels, w = rng.standard_normal((4, 3)), np.array([0, 1, 2, 1]), np.array([1.0, 2, 0, 1])
    per_sample = [softmax_cross_entropy(z[i : i + 1], labels[i : i + 1])[0] for i in range(4)]
    loss, _ = softmax_cross_entropy(z, labels, weights=w)
    assert loss == pytest.approx(np.dot(w, per_sample) / w.sum())


def test_losses_keep_float32_gradients():
    z = np.zeros((2, 3), np.float32)
    assert softmax_cross_entropy(z, [0, 1])[1].dtype == np.float32
    assert smooth_l1(z, z + 1)[1].dtype == np.float32
    assert binary_cross_entropy_with_logits(z, z)[1].dtype == np.float32


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
    loss, grad = binary_cross_entropy_with_logits(np.array([1e4, -1e4]), np.array([1.0, 0.0]))
    assert loss == 0.0 and not grad.any()
    loss, _ = binary_cross_entropy_with_logits(np.array([60.0], np.float32), np.zeros(1))
    assert loss == pytest.approx(60.0)


def test_bce_with_logits_gradient_for_large_logits():
    rng = np.random.default_rng(5)
    x = rng.choice([-1, 1], 6) * rng.uniform(50, 60, 6)
    t = rng.random(6)
    assert grad_error(lambda v: binary_cross_entropy_with_logits(v, t), x) < 1e-6


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="labels must lie"):
        softmax_cross_entropy(np.zeros((1, 3)), [5])
    with pytest.raises(ValueError, match="one shape"):
        smooth_l1(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        smooth_l1(np.zeros(3), np.zeros(3), reduction="max")
    with pytest.raises(ValueError, match="beta"):
        smooth_l1(np.zeros(3), np.zeros(3), beta=-1)
    with pytest.raises(ValueError, match="weights"):
        binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), weights=np.ones(2))
    with pytest.raises(ValueError, match="integers"):
        softmax_cross_entropy(np.zeros((1, 3)), [0.5])


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
    for reduction in ("sum", "mean"):
        theirs = F.smooth_l1_loss(torch.tensor(p), torch.tensor(t), beta=1 / 9, reduction=reduction)
        assert smooth_l1(p, t, 1 / 9, reduction=reduction)[0] == pytest.approx(theirs.item())
    x, y = rng.standard_normal(7) * 30, rng.random(7)
    tx = torch.tensor(x, requires_grad=True)
    theirs = F.binary_cross_entropy_with_logits(tx, torch.tensor(y), reduction="sum")
    theirs.backward()
    loss, grad = binary_cross_entropy_with_logits(x, y, reduction="sum")
    assert loss == pytest.approx(theirs.item())
    np.testing.assert_allclose(grad, tx.grad.numpy(), atol=1e-12)
