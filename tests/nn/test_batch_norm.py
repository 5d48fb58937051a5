"""Frozen batch norm: torchvision's formula, folding into the convolution, frozen parameters."""

import numpy as np
import pytest

from rcnn_from_scratch.nn import SGD, Adam, Parameter
from rcnn_from_scratch.nn.batch_norm import (
    FrozenBatchNorm2d,
    fold_batch_norm,
    frozen_batch_norm,
    frozen_batch_norm_scale_shift,
)
from rcnn_from_scratch.nn.conv import Conv2d, conv2d_forward, conv2d_reference
from rcnn_from_scratch.nn.gradcheck import check_module_gradients


def random_statistics(rng, C, dtype=np.float64):
    return tuple(
        a.astype(dtype)
        for a in (
            rng.standard_normal(C),  # weight
            rng.standard_normal(C),  # bias
            rng.standard_normal(C),  # running_mean
            rng.uniform(0.1, 3.0, C),  # running_var
        )
    )


def test_frozen_batch_norm_by_hand():
    # one channel: weight 2, bias 1, mean 3, var 4, eps 0 -> scale 1, shift -2
    x = np.array([1.0, 3.0, 5.0]).reshape(1, 1, 1, 3)
    y = frozen_batch_norm(x, [2.0], [1.0], [3.0], [4.0], eps=0.0)
    np.testing.assert_array_equal(y.ravel(), [-1.0, 1.0, 3.0])


@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_frozen_batch_norm_equals_the_textbook_formula(eps):
    rng = np.random.default_rng(0)
    w, b, m, v = random_statistics(rng, 5)
    x = rng.standard_normal((2, 5, 4, 3))
    expected = (x - m[:, None, None]) / np.sqrt(v[:, None, None] + eps) * w[:, None, None]
    expected += b[:, None, None]
    np.testing.assert_allclose(frozen_batch_norm(x, w, b, m, v, eps), expected, rtol=1e-12)


@pytest.mark.parametrize("eps", [0.0, 1e-5])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("kernel, stride, padding", [(1, 1, 0), (3, 2, 1), (7, 2, 3)])
def test_folded_conv_equals_conv_then_frozen_batch_norm_in_float64(
    eps, with_bias, kernel, stride, padding
):
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((2, 3, 13, 11)), rng.standard_normal((4, 3, kernel, kernel))
    b = rng.standard_normal(4) if with_bias else None
    stats = random_statistics(rng, 4)
    two_steps = frozen_batch_norm(conv2d_reference(x, W, b, stride, padding), *stats, eps)
    W2, b2 = fold_batch_norm(W, b, *stats, eps)
    assert W2.dtype == b2.dtype == np.float64 and W2.shape == W.shape and b2.shape == (4,)
    folded = conv2d_reference(x, W2, b2, stride, padding)
    np.testing.assert_allclose(folded, two_steps, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_folded_conv_stays_float32_and_close_to_conv_then_batch_norm(eps):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 8, 12, 12)).astype(np.float32)
    W = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    stats = random_statistics(rng, 16, np.float32)
    W2, b2 = fold_batch_norm(W, None, *stats, eps)
    assert W2.dtype == b2.dtype == np.float32
    folded = conv2d_forward(x, W2, b2, 1, 1)[0]
    two_steps = frozen_batch_norm(conv2d_forward(x, W, None, 1, 1)[0], *stats, eps)
    assert folded.dtype == two_steps.dtype == np.float32
    scale = np.max(np.abs(two_steps))
    np.testing.assert_allclose(folded, two_steps, rtol=1e-5, atol=1e-5 * scale)


def test_float32_statistics_give_float32_scale_and_output():
    rng = np.random.default_rng(3)
    stats = random_statistics(rng, 3, np.float32)
    scale, shift = frozen_batch_norm_scale_shift(*stats, eps=1e-5)
    assert scale.dtype == shift.dtype == np.float32
    x = rng.standard_normal((1, 3, 2, 2)).astype(np.float32)
    assert frozen_batch_norm(x, *stats).dtype == np.float32


def test_zero_variance_with_eps_zero_names_the_channel():
    w, b, m, v = np.ones(3), np.zeros(3), np.zeros(3), np.array([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="channel 1"):
        frozen_batch_norm(np.ones((1, 3, 2, 2)), w, b, m, v, eps=0.0)
    with pytest.raises(ValueError, match="channel 1"):
        fold_batch_norm(np.ones((3, 2, 1, 1)), None, w, b, m, v, eps=0.0)
    # with torchvision's default eps the same statistics are fine
    assert np.isfinite(frozen_batch_norm(np.ones((1, 3, 2, 2)), w, b, m, v, eps=1e-5)).all()


def test_shape_mismatches_are_errors_naming_the_argument():
    w, b, m, v = np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="running_var"):
        frozen_batch_norm(np.ones((1, 3, 2, 2)), w, b, m, np.ones(4))
    with pytest.raises(ValueError, match="weight"):
        frozen_batch_norm(np.ones((1, 4, 2, 2)), w, b, m, v)
    with pytest.raises(ValueError, match="x must"):
        frozen_batch_norm(np.ones((3, 2, 2)), w, b, m, v)
    with pytest.raises(ValueError, match="conv_weight"):
        fold_batch_norm(np.ones((3, 2, 1)), None, w, b, m, v)
    with pytest.raises(ValueError, match="bn_weight|weight"):
        fold_batch_norm(np.ones((4, 2, 1, 1)), None, w, b, m, v)
    with pytest.raises(ValueError, match="conv_bias"):
        fold_batch_norm(np.ones((3, 2, 1, 1)), np.ones(2), w, b, m, v)


def test_empty_batch_gives_an_empty_output():
    stats = random_statistics(np.random.default_rng(4), 3)
    assert frozen_batch_norm(np.zeros((0, 3, 5, 4)), *stats).shape == (0, 3, 5, 4)


def test_layer_has_torchvisions_names_and_no_gradient_arrays():
    bn = FrozenBatchNorm2d(6)
    assert [n for n, _ in bn.named_parameters()] == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
    ]
    assert all(p.grad is None and not p.requires_grad for p in bn.parameters())
    bn.zero_grad()  # a no-op, not an error
    assert bn.eps == 1e-5 and FrozenBatchNorm2d(6, eps=0.0).eps == 0.0


def test_layer_input_gradient_equals_numerical_gradient():
    rng = np.random.default_rng(5)
    bn = FrozenBatchNorm2d(3, eps=0.0).to(np.float64)
    bn.load_state_dict(dict(zip(["weight", "bias", "running_mean", "running_var"],
                                random_statistics(rng, 3), strict=True)))  # fmt: skip
    errors = check_module_gradients(bn, [rng.standard_normal((2, 3, 4, 5))], rng)
    assert list(errors) == ["input"] and errors["input"] < 1e-8, errors


def test_frozen_parameters_are_skipped_by_optimisers_and_casts():
    trained, frozen = Parameter(np.ones(3)), Parameter(np.ones(3), requires_grad=False)
    assert trained.requires_grad and trained.grad.shape == (3,) and frozen.grad is None
    for opt_cls in (SGD, Adam):
        opt = opt_cls([trained, frozen], lr=0.1)
        assert opt.params == [trained]
        trained.grad[...] = 1.0
        opt.zero_grad()
        opt.step()  # no error from the frozen one; it keeps its values
        np.testing.assert_array_equal(frozen.data, 1.0)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([frozen], lr=0.1)
    bn = FrozenBatchNorm2d(2).to(np.float64)
    assert bn.weight.data.dtype == np.float64 and bn.weight.grad is None
    # an ordinary layer keeps its gradients
    assert all(p.grad is not None for p in Conv2d(2, 2, 1).parameters())


@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_matches_torchvision_frozen_batch_norm_and_torch_conv(eps):
    torch = pytest.importorskip("torch")
    misc = pytest.importorskip("torchvision.ops.misc")
    rng = np.random.default_rng(6)
    C = 16
    w, b, m, v = random_statistics(rng, C, np.float32)
    x = rng.standard_normal((2, 8, 10, 9)).astype(np.float32)
    W = rng.standard_normal((C, 8, 3, 3)).astype(np.float32)
    tbn = misc.FrozenBatchNorm2d(C, eps=eps)
    tbn.load_state_dict({"weight": torch.tensor(w), "bias": torch.tensor(b),
                         "running_mean": torch.tensor(m), "running_var": torch.tensor(v)})  # fmt: skip
    with torch.no_grad():
        tconv = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(W), None, 2, 1)
        expected = tbn(tconv).numpy()
        expected_bn = tbn(torch.tensor(x[:, :1].repeat(C, axis=1))).numpy()
    # the batch norm alone: the same float32 operations in the same order
    np.testing.assert_allclose(
        frozen_batch_norm(x[:, :1].repeat(C, axis=1), w, b, m, v, eps), expected_bn,
        rtol=1e-6, atol=1e-6,
    )  # fmt: skip
    W2, b2 = fold_batch_norm(W, None, w, b, m, v, eps)
    folded = conv2d_forward(x, W2, b2, 2, 1)[0]
    np.testing.assert_allclose(folded, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
