"""Convolutions: equal to the loop reference, gradients equal numerical ones, PyTorch parity."""

import numpy as np
import pytest

from rcnn_from_scratch.nn import Conv2d, ConvTranspose2d
from rcnn_from_scratch.nn.conv import conv2d_forward, conv2d_reference, conv_transpose2d_forward
from rcnn_from_scratch.nn.gradcheck import check_module_gradients

CASES = [  # (kernel, stride, padding)
    (3, 1, 1),
    (3, 2, 1),
    (1, 1, 0),
    ((3, 2), (2, 1), (0, 1)),
    (5, 3, 2),
]


@pytest.mark.parametrize("kernel, stride, padding", CASES)
def test_conv_equals_the_loop_reference(kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 11, 9))
    conv = Conv2d(3, 4, kernel, stride, padding, rng=rng).to(np.float64)
    conv.bias.data[:] = rng.standard_normal(4)
    expected = conv2d_reference(x, conv.weight.data, conv.bias.data, stride, padding)
    np.testing.assert_allclose(conv(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride, padding", CASES)
def test_conv_gradients_equal_numerical_gradients(kernel, stride, padding):
    rng = np.random.default_rng(1)
    conv = Conv2d(2, 3, kernel, stride, padding, rng=rng).to(np.float64)
    errors = check_module_gradients(conv, [rng.standard_normal((2, 2, 8, 7))], rng)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (4, 2, 1), (3, 1, 0)])
def test_transposed_conv_gradients_equal_numerical_gradients(kernel, stride, padding):
    rng = np.random.default_rng(2)
    layer = ConvTranspose2d(3, 2, kernel, stride, padding, rng=rng).to(np.float64)
    errors = check_module_gradients(layer, [rng.standard_normal((2, 3, 4, 5))], rng)
    assert max(errors.values()) < 1e-6, errors


def test_transposed_conv_is_the_adjoint_of_conv():
    # <conv(x), y> == <x, conv_transpose(y)> for the same weights: the defining property
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 3, 3))
    x = rng.standard_normal((2, 3, 9, 9))
    y = rng.standard_normal((2, 4, 5, 5))
    conv_x, _ = conv2d_forward(x, w, None, 2, 1)
    convt_y, _ = conv_transpose2d_forward(y, w, None, 2, 1)
    assert np.sum(conv_x * y) == pytest.approx(np.sum(x * convt_y), rel=1e-10)


def test_two_by_two_stride_two_transposed_conv_doubles_the_size():
    layer = ConvTranspose2d(8, 4, 2, 2)
    assert layer(np.zeros((1, 8, 14, 14), np.float32)).shape == (1, 4, 28, 28)


def test_float32_in_float32_out_and_bad_shapes_are_errors():
    conv = Conv2d(3, 8, 3, padding=1)
    assert conv(np.zeros((1, 3, 8, 8), np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        conv(np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="smaller than"):
        Conv2d(3, 8, 5)(np.zeros((1, 3, 2, 2), np.float32))


def test_backward_without_forward_fails_loudly():
    conv = Conv2d(1, 1, 1)
    with pytest.raises(RuntimeError, match="without a forward"):
        conv.backward(np.zeros((1, 1, 2, 2)))


@pytest.mark.parametrize("kernel, stride, padding", CASES)
def test_conv_matches_pytorch_forward_and_backward(kernel, stride, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 11, 9))
    conv = Conv2d(3, 4, kernel, stride, padding, rng=rng).to(np.float64)
    conv.bias.data[:] = rng.standard_normal(4)
    out = conv(x)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(conv.weight.data, requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tw, torch.tensor(conv.bias.data), stride, padding)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(conv.weight.grad, tw.grad.numpy(), atol=1e-10)


def test_transposed_conv_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 5, 4))
    layer = ConvTranspose2d(3, 2, 3, 2, 1, rng=rng).to(np.float64)
    out = layer(x)
    expected = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(layer.weight.data), torch.tensor(layer.bias.data), 2, 1
    )
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-10)
