"""Linear and Flatten: by hand, numerical gradients, PyTorch parity."""

import numpy as np
import pytest

from rcnn_from_scratch.nn.gradcheck import check_module_gradients
from rcnn_from_scratch.nn.linear import Flatten, Linear


def test_linear_by_hand():
    layer = Linear(2, 1)
    layer.weight.data[:] = [[2.0, -1.0]]
    layer.bias.data[:] = 0.5
    np.testing.assert_array_equal(layer(np.array([[3.0, 4.0]], np.float32)), [[2.5]])


@pytest.mark.parametrize("layer, shape", [(Linear(6, 4, rng=0), (5, 6)), (Flatten(), (2, 3, 2, 2))])
def test_gradients_equal_numerical_gradients(layer, shape):
    rng = np.random.default_rng(0)
    errors = check_module_gradients(layer.to(np.float64), [rng.standard_normal(shape)], rng)
    assert max(errors.values()) < 1e-6, errors


def test_flatten_is_torch_flatten_from_axis_one_and_backward_restores_the_shape():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    layer = Flatten()
    np.testing.assert_array_equal(layer(x), x.reshape(2, 12))
    assert layer.backward(np.ones((2, 12))).shape == (2, 3, 2, 2)


def test_no_rows_give_no_rows():
    layer = Linear(3, 2)
    out = layer(np.zeros((0, 3), np.float32))
    assert out.shape == (0, 2) and layer.backward(out).shape == (0, 3)


def test_wrong_width_is_an_error():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        Linear(3, 2)(np.zeros((1, 4), np.float32))


def test_linear_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    layer = Linear(5, 3, rng=rng).to(np.float64)
    x, dout = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    out = layer(x)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)
    tout = torch.nn.functional.linear(tx, tw, torch.tensor(layer.bias.data))
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, tw.grad.numpy(), atol=1e-12)
