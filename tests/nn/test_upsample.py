"""Nearest resize: np.repeat, the loop reference, ATen's index rule, gradients, PyTorch parity."""

import numpy as np
import pytest

from rcnn_from_scratch.nn.gradcheck import check_gradient, check_module_gradients
from rcnn_from_scratch.nn.upsample import (
    UpsampleNearest,
    interpolate_nearest,
    interpolate_nearest_backward,
    interpolate_nearest_forward,
    interpolate_nearest_reference,
    nearest_source_index,
)

SIZES = [  # (H, W) -> (Ho, Wo): double, identity, up, down, mixed, to 1
    ((3, 4), (6, 8)),
    ((5, 7), (5, 7)),
    ((3, 4), (7, 9)),
    ((9, 10), (4, 3)),
    ((5, 6), (10, 4)),
    ((4, 5), (1, 1)),
    ((1, 1), (3, 2)),
    ((7, 3), (13, 6)),
]


def test_doubling_equals_np_repeat_on_both_axes():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7)).astype(np.float32)
    out = interpolate_nearest(x, (10, 14))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, x.repeat(2, axis=2).repeat(2, axis=3))


@pytest.mark.parametrize("in_size, out_size", SIZES)
def test_resize_equals_the_loop_reference(in_size, out_size):
    x = np.random.default_rng(1).standard_normal((2, 3, *in_size))
    np.testing.assert_array_equal(
        interpolate_nearest(x, out_size), interpolate_nearest_reference(x, out_size)
    )


def test_source_index_rule_by_hand():
    np.testing.assert_array_equal(nearest_source_index(3, 7), [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(nearest_source_index(4, 8), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(nearest_source_index(5, 2), [0, 2])
    np.testing.assert_array_equal(nearest_source_index(6, 6), np.arange(6))


@pytest.mark.parametrize("in_size, out_size", SIZES)
def test_backward_is_the_adjoint_of_forward(in_size, out_size):
    # <up(x), y> == <x, up^T(y)>
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, *in_size))
    out, cache = interpolate_nearest_forward(x, out_size)
    y = rng.standard_normal(out.shape)
    dx = interpolate_nearest_backward(y, cache)
    assert dx.shape == x.shape
    assert np.sum(out * y) == pytest.approx(np.sum(x * dx), rel=1e-12)


@pytest.mark.parametrize("in_size, out_size", SIZES[:5])
def test_gradient_equals_numerical_gradient(in_size, out_size):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, *in_size))
    errors = check_module_gradients(UpsampleNearest(), [x, out_size], rng)
    assert errors["input"] < 1e-8, errors
    r = rng.standard_normal((1, 2, *out_size))
    _, cache = interpolate_nearest_forward(x, out_size)
    check_gradient(
        lambda z: float(np.sum(interpolate_nearest(z, out_size) * r)),
        x,
        interpolate_nearest_backward(r, cache),
        tol=1e-8,
    )


def test_shrinking_gives_zero_gradient_to_unread_pixels():
    x = np.zeros((1, 1, 4, 4))
    _, cache = interpolate_nearest_forward(x, (2, 2))  # reads rows/cols 0 and 2
    dx = interpolate_nearest_backward(np.ones((1, 1, 2, 2)), cache)
    expected = np.zeros((4, 4))
    expected[np.ix_([0, 2], [0, 2])] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_empty_batch_and_bad_arguments():
    assert interpolate_nearest(np.zeros((0, 3, 4, 5)), (8, 10)).shape == (0, 3, 8, 10)
    with pytest.raises(ValueError, match="size"):
        interpolate_nearest(np.zeros((1, 1, 4, 4)), (0, 3))
    with pytest.raises(ValueError, match="size"):
        interpolate_nearest(np.zeros((1, 1, 4, 4)), 8)
    with pytest.raises(ValueError, match="x must"):
        interpolate_nearest(np.zeros((4, 4)), (8, 8))
    with pytest.raises(ValueError, match="x must"):
        interpolate_nearest(np.zeros((1, 1, 4, 4), int), (8, 8))
    _, cache = interpolate_nearest_forward(np.zeros((1, 1, 4, 4)), (8, 8))
    with pytest.raises(ValueError, match="dout"):
        interpolate_nearest_backward(np.zeros((1, 1, 8, 7)), cache)


@pytest.mark.parametrize(
    "in_size, out_size",
    SIZES + [((25, 34), (50, 68)), ((13, 17), (25, 34)), ((100, 136), (200, 272)),
             ((37, 41), (111, 29)), ((300, 7), (301, 1000))],
)  # fmt: skip
def test_matches_pytorch_interpolate_nearest_forward_and_backward(in_size, out_size):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, *in_size)).astype(np.float32)
    out, cache = interpolate_nearest_forward(x, out_size)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.interpolate(tx, size=out_size, mode="nearest")
    np.testing.assert_array_equal(out, tout.detach().numpy())
    dout = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(
        interpolate_nearest_backward(dout, cache), tx.grad.numpy(), rtol=1e-6, atol=1e-5
    )
