"""The mask head and Mask R-CNN's mask loss: shapes, gradients through the whole head, the loss
against its formula, and the decoupling (only the true class's channel is trained)."""

import numpy as np
import pytest

from rcnn_from_scratch.heads.mask_head import MaskHead, mask_loss, mask_probabilities
from rcnn_from_scratch.nn.gradcheck import (
    check_module_gradients,
    numerical_gradient,
    relative_error,
)


def _log_sigmoid(x):
    """``log sigmoid(x) = -log(1 + exp(-x))``, written independently of the package's form."""
    return -np.logaddexp(0.0, -x)


def test_output_shapes_class_specific_and_agnostic():
    x = np.random.default_rng(0).standard_normal((3, 8, 14, 14)).astype(np.float32)
    head = MaskHead(8, num_classes=5, layers=(4, 4), rng=0)
    out = head(x)
    assert out.shape == (3, 5, 28, 28) and out.dtype == np.float32
    assert head.backward(np.ones_like(out)).shape == x.shape
    agnostic = MaskHead(8, num_classes=5, layers=(4, 4), class_agnostic=True, rng=0)
    assert agnostic(x).shape == (3, 1, 28, 28)


def test_empty_batch_gives_empty_outputs_of_the_right_shape():
    head = MaskHead(8, num_classes=3, layers=(4,), rng=0)
    out = head(np.zeros((0, 8, 14, 14), np.float32))
    assert out.shape == (0, 3, 28, 28)
    assert head.backward(out).shape == (0, 8, 14, 14)
    loss = mask_loss(out, np.zeros(0, np.int64), np.zeros((0, 28, 28)))
    assert loss.loss == 0.0 and loss.dlogits.shape == (0, 3, 28, 28)
    assert mask_probabilities(out, np.zeros(0, np.int64)).shape == (0, 28, 28)


def test_parameter_names_follow_torchvision():
    names = [n for n, _ in MaskHead(4, 3, layers=(2, 2, 2, 2)).named_parameters()]
    assert names == [
        "mask_fcn1.weight", "mask_fcn1.bias", "mask_fcn2.weight", "mask_fcn2.bias",
        "mask_fcn3.weight", "mask_fcn3.bias", "mask_fcn4.weight", "mask_fcn4.bias",
        "conv5_mask.weight", "conv5_mask.bias", "mask_fcn_logits.weight", "mask_fcn_logits.bias",
    ]  # fmt: skip
    assert MaskHead(4, 3, rng=0).conv5_mask.weight.shape == (64, 64, 2, 2)


@pytest.mark.parametrize("class_agnostic", [False, True])
def test_backward_of_the_whole_head_equals_numerical_gradients(class_agnostic):
    rng = np.random.default_rng(1)
    head = MaskHead(2, 3, layers=(3, 3, 3, 3), class_agnostic=class_agnostic, rng=rng)
    head.to(np.float64)
    for p in head.parameters():  # zero biases would put dead ReLU outputs exactly on the kink
        p.data += 0.1 * rng.standard_normal(p.shape)
    x = rng.standard_normal((2, 2, 4, 4))
    errors = check_module_gradients(head, (x,), rng)
    assert set(errors) == {"input"} | {n for n, _ in head.named_parameters()}
    assert max(errors.values()) < 1e-6, errors


def test_mask_loss_gradients_through_the_head_equal_numerical_ones():
    rng = np.random.default_rng(2)
    head = MaskHead(2, 3, layers=(3,), rng=rng).to(np.float64)
    for p in head.parameters():  # zero biases would put dead ReLU outputs exactly on the kink
        p.data += 0.1 * rng.standard_normal(p.shape)
    x = rng.standard_normal((3, 2, 3, 3))
    labels = np.array([3, 1, 3])
    targets = rng.uniform(size=(3, 6, 6))

    def total(_=None) -> float:
        return mask_loss(head(x), labels, targets).loss

    head.zero_grad()
    dx = head.backward(mask_loss(head(x), labels, targets).dlogits)
    assert relative_error(dx, numerical_gradient(total, x)) < 1e-6
    analytic = {n: p.grad.copy() for n, p in head.named_parameters()}
    for name, p in head.named_parameters():
        assert relative_error(analytic[name], numerical_gradient(total, p.data)) < 1e-6, name


def test_mask_loss_is_the_mean_binary_cross_entropy_of_the_true_class_channel():
    rng = np.random.default_rng(3)
    z = 3 * rng.standard_normal((4, 3, 5, 5))
    labels = np.array([2, 1, 3, 2])
    t = rng.uniform(size=(4, 5, 5))
    t[0] = rng.uniform(size=(5, 5)) > 0.5  # hard targets too
    expected = 0.0
    for k in range(4):  # -t log s(z) - (1 - t) log(1 - s(z)), with 1 - s(z) = s(-z)
        zk = z[k, labels[k] - 1]
        expected += np.sum(-t[k] * _log_sigmoid(zk) - (1 - t[k]) * _log_sigmoid(-zk))
    expected /= 4 * 5 * 5
    out = mask_loss(z, labels, t)
    assert out.loss == pytest.approx(expected, rel=1e-12)
    assert out.dlogits.shape == z.shape and out.dlogits.dtype == z.dtype


def test_mask_loss_gradient_equals_numerical_gradient_and_is_zero_off_the_true_class():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 4, 3, 3))
    labels = np.array([4, 2, 2])
    t = rng.uniform(size=(3, 3, 3))
    out = mask_loss(z, labels, t)
    numeric = numerical_gradient(lambda _: mask_loss(z, labels, t).loss, z)
    assert relative_error(out.dlogits, numeric) < 1e-6
    trained = np.zeros(z.shape, bool)
    trained[np.arange(3), labels - 1] = True
    assert np.all(out.dlogits[~trained] == 0)
    assert np.all(out.dlogits[trained] != 0)


def test_class_agnostic_loss_reads_channel_zero_for_every_label():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((2, 1, 4, 4))
    t = rng.uniform(size=(2, 4, 4))
    a = mask_loss(z, np.array([7, 2]), t)
    b = mask_loss(z, np.array([1, 1]), t)
    assert a.loss == b.loss and np.array_equal(a.dlogits, b.dlogits)
    assert np.all(a.dlogits != 0)


def test_mask_loss_rejects_bad_input():
    z = np.zeros((2, 3, 4, 4))
    t = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match="mask_targets must have shape"):
        mask_loss(z, [1, 2], np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match="labels must have shape"):
        mask_loss(z, [1, 2, 3], t)
    with pytest.raises(ValueError, match="in 1..3"):
        mask_loss(z, [1, 4], t)
    with pytest.raises(ValueError, match="in 1..3"):
        mask_loss(z, [0, 1], t)  # background RoIs have no mask target
    with pytest.raises(ValueError, match=">= 1"):
        mask_loss(np.zeros((2, 1, 4, 4)), [1, 0], t)
    with pytest.raises(ValueError, match="integers"):
        mask_loss(z, np.array([1.0, 2.0]), t)
    with pytest.raises(ValueError, match=r"\(K, C_m, M, M\)"):
        mask_loss(np.zeros((2, 16)), [1, 2], t)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mask_loss(z, [1, 2], t + 2)


def test_mask_probabilities_pick_the_label_channel():
    z = np.zeros((3, 4, 2, 2), np.float32)
    for c in range(4):
        z[:, c] = c - 1.5  # channel c holds the logit c - 1.5 everywhere
    p = mask_probabilities(z, np.array([1, 4, 2]))
    expected = 1 / (1 + np.exp(-(np.array([0, 3, 1]) - 1.5)))
    assert p.shape == (3, 2, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p, np.broadcast_to(expected[:, None, None], p.shape), rtol=1e-6)
    agnostic = mask_probabilities(z[:, :1], np.array([3, 3, 1]))
    np.testing.assert_allclose(agnostic, 1 / (1 + np.exp(1.5)), rtol=1e-6)
    with pytest.raises(ValueError, match="in 1..4"):
        mask_probabilities(z, np.array([1, 5, 2]))


def test_background_channel_adds_one_channel_before_the_classes():
    x = np.random.default_rng(0).standard_normal((2, 8, 14, 14)).astype(np.float32)
    head = MaskHead(8, num_classes=5, layers=(4,), rng=0, background_channel=True)
    assert head(x).shape == (2, 6, 28, 28)
    assert head.mask_fcn_logits.weight.shape == (6, 4, 1, 1)  # torchvision: (91, 256, 1, 1)
    assert MaskHead(8, num_classes=5, layers=(4,), rng=0).mask_fcn_logits.weight.shape[0] == 5
    with pytest.raises(ValueError, match="exclude each other"):
        MaskHead(8, 5, class_agnostic=True, background_channel=True)


def test_background_channel_label_l_reads_channel_l():
    z = np.zeros((3, 5, 2, 2), np.float32)
    for c in range(5):
        z[:, c] = c - 1.5
    p = mask_probabilities(z, np.array([1, 4, 2]), background_channel=True)
    expected = 1 / (1 + np.exp(-(np.array([1, 4, 2]) - 1.5)))
    np.testing.assert_allclose(p, np.broadcast_to(expected[:, None, None], p.shape), rtol=1e-6)
    for bad in (0, 5):
        with pytest.raises(ValueError, match=r"in 1..4 .*channel 0"):
            mask_probabilities(z, np.array([1, bad, 2]), background_channel=True)
    with pytest.raises(ValueError, match=">= 2 channels"):
        mask_probabilities(z[:, :1], np.array([1, 1, 1]), background_channel=True)


def test_background_channel_loss_is_the_default_loss_without_channel_zero():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4, 4, 6, 6))
    labels = np.array([1, 3, 2, 3])
    t = rng.random((4, 6, 6))
    with_bg = mask_loss(z, labels, t, background_channel=True)
    without = mask_loss(z[:, 1:], labels, t)
    assert with_bg.loss == pytest.approx(without.loss, rel=1e-12)
    assert not with_bg.dlogits[:, 0].any()
    np.testing.assert_allclose(with_bg.dlogits[:, 1:], without.dlogits, rtol=1e-12)


def test_background_channel_probabilities_match_torchvision_maskrcnn_inference():
    torch = pytest.importorskip("torch")
    roi_heads = pytest.importorskip("torchvision.models.detection.roi_heads")
    rng = np.random.default_rng(6)
    z = rng.standard_normal((7, 91, 28, 28)).astype(np.float32)
    labels = rng.integers(1, 91, 7)
    expected = roi_heads.maskrcnn_inference(torch.from_numpy(z), [torch.from_numpy(labels)])[0]
    ours = mask_probabilities(z, labels, background_channel=True)
    np.testing.assert_allclose(ours, expected.numpy()[:, 0], atol=1e-6)
