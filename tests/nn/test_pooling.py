"""Max pooling: the loop reference, first-maximum routing, numerical gradients, PyTorch parity."""

import numpy as np
import pytest

from rcnn_from_scratch.nn.gradcheck import check_module_gradients
from rcnn_from_scratch.nn.pooling import MaxPool2d, max_pool2d_reference

POOLS = [(2, None, 0), (3, 2, 1), (2, 1, 0), (3, 1, 1), (3, 3, 1), (3, None, 0)]


def distinct(rng, shape):
    """Inputs without ties (a tie is a kink of max-pool's gradient)."""
    return rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape) - 0.5


def test_two_by_two_pool_by_hand():
    x = np.array([[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 0, 1, 1], [9, 0, 1, 2]])[None, None]
    np.testing.assert_array_equal(MaxPool2d(2)(x)[0, 0], [[5, 8], [9, 2]])


@pytest.mark.parametrize("k, s, p", POOLS)
def test_max_pool_equals_the_loop_reference(k, s, p):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 7))
    np.testing.assert_array_equal(MaxPool2d(k, s, p)(x), max_pool2d_reference(x, k, s, p))


@pytest.mark.parametrize("k, s, p", POOLS)
def test_max_pool_gradients_equal_numerical_gradients(k, s, p):
    rng = np.random.default_rng(1)
    errors = check_module_gradients(MaxPool2d(k, s, p), [distinct(rng, (2, 2, 7, 6))], rng)
    assert max(errors.values()) < 1e-6, errors


def test_gradient_goes_to_the_first_maximum_on_ties_and_adds_where_windows_overlap():
    pool = MaxPool2d(2)
    pool(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1, 0], [0, 0]])
    pool = MaxPool2d(2, stride=1)  # the centre 9 wins all four windows
    pool(np.array([[0.0, 1, 0], [2, 9, 3], [0, 4, 0]])[None, None])
    dx = pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
    np.testing.assert_array_equal(dx, [[0, 0, 0], [0, 4, 0], [0, 0, 0]])


def test_float32_stays_float32_and_empty_batches_work():
    pool = MaxPool2d(2)
    out = pool(np.zeros((0, 3, 8, 8), np.float32))
    assert out.shape == (0, 3, 4, 4) and out.dtype == np.float32
    assert pool.backward(out).shape == (0, 3, 8, 8)


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="padding"):
        MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="smaller than"):
        MaxPool2d(3)(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        MaxPool2d(2)(np.zeros((4, 4)))


@pytest.mark.parametrize("k, s, p", POOLS)
def test_max_pool_matches_pytorch_forward_and_backward(k, s, p):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = distinct(rng, (2, 3, 9, 7))
    pool = MaxPool2d(k, s, p)
    out = pool(x)
    dout = rng.standard_normal(out.shape)
    dx = pool.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, k, s, p)
    tout.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-12)


def max_pool_gradient_reference(x, dout, k):
    """Non-overlapping k x k windows, one at a time: the gradient goes to the window's first
    maximum in row-major order (np.argmax's choice)."""
    dx = np.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for y in range(Ho):
        for x_ in range(Wo):
            window = x[:, :, y * k : y * k + k, x_ * k : x_ * k + k].reshape(N, C, k * k)
            first = np.argmax(window, axis=2)  # (N, C)
            i, j = np.divmod(first, k)
            n, c = np.indices((N, C))
            dx[n, c, y * k + i, x_ * k + j] = dout[:, :, y, x_]
    return dx


@pytest.mark.parametrize("k, shape", [(2, (2, 3, 8, 6)), (2, (2, 3, 9, 7)), (3, (1, 2, 10, 8))])
@pytest.mark.parametrize("ties", [False, True])
def test_side_by_side_windows_route_to_the_first_maximum_with_or_without_ties(k, shape, ties):
    # stride == kernel, no padding (every pool of the small backbone); rounded inputs make ties
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    if ties:
        x = np.round(x)
    pool = MaxPool2d(k)
    out = pool(x)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(pool.backward(dout), max_pool_gradient_reference(x, dout, k))


def test_a_tie_beside_a_nan_window_goes_to_the_first_maximum_and_no_gradient_is_lost():
    # window 0 has two maxima, window 1 a NaN (which equals nothing): the tie's gradient goes to
    # its first maximum, the NaN window's to exactly one of its pixels
    x = np.array([[1.0, 1.0, np.nan, 0.0], [0.0, 0.0, 0.0, 0.0]])[None, None]
    pool = MaxPool2d(2)
    out = pool(x)
    dx = pool.backward(np.array([[[[2.0, 3.0]]]]))
    np.testing.assert_array_equal(dx[0, 0, :, :2], [[2, 0], [0, 0]])  # the first of the tie
    assert dx[0, 0, :, 2:].sum() == 3 and np.isnan(out[0, 0, 0, 1])
