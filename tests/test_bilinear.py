"""Bilinear interpolation against SciPy, closed forms, the loop reference and numerical gradients."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from rcnn_from_scratch.bilinear import (
    bilinear_interpolate,
    bilinear_interpolate_backward,
    bilinear_interpolate_forward,
    bilinear_interpolate_reference,
    linear_interpolation_weights,
)


@pytest.mark.parametrize("seed", range(3))
def test_interior_points_equal_scipy_map_coordinates_order_1(seed):
    rng = np.random.default_rng(seed)
    f = rng.random((3, 9, 13))
    y, x = rng.uniform(0, 8, 500), rng.uniform(0, 12, 500)
    ours = bilinear_interpolate(f, y, x)
    scipy = np.stack([ndimage.map_coordinates(c, [y, x], order=1) for c in f])
    np.testing.assert_allclose(ours, scipy, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.floats(-10, 10),
    st.floats(0, 6),
    st.floats(0, 8),
)
def test_linear_map_is_reproduced_exactly(a, b, c, y, x):
    yy, xx = np.mgrid[0:7, 0:9]
    f = a * xx + b * yy + c
    np.testing.assert_allclose(bilinear_interpolate(f, y, x), a * x + b * y + c, atol=1e-9)


def test_weights_are_the_opposite_areas():
    # the lecture's figure: the point (y, x) = (0.25, 0.5) between four pixels
    f = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = 0.75 * 0.5 * 1 + 0.75 * 0.5 * 2 + 0.25 * 0.5 * 3 + 0.25 * 0.5 * 4
    assert bilinear_interpolate(f, 0.25, 0.5) == pytest.approx(expected)


@pytest.mark.parametrize("size", [1, 2, 5])
def test_boundary_rule_at_and_around_each_edge(size):
    f = np.arange(1.0, size + 1.0)[:, None] * np.ones((1, 4))  # rows hold 1..size
    ys = np.array([-1.5, -1.0, -0.5, 0.0, size - 1, size - 0.5, size, size + 0.01, size + 1])
    got = bilinear_interpolate(f, ys, np.ones_like(ys))
    expected = [0, 1, 1, 1, size, size, size, 0, 0]  # beyond [-1, H]: 0; inside the band: clamped
    np.testing.assert_allclose(got, expected)
    got_x = bilinear_interpolate(f.T.copy(), np.ones_like(ys), ys)
    np.testing.assert_allclose(got_x, expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 7), st.floats(-2, 8)), min_size=1, max_size=20))
def test_equals_the_loop_reference_everywhere(points):
    f = np.random.default_rng(0).random((2, 5, 6))
    y, x = np.array(points).T
    ref = np.stack([bilinear_interpolate_reference(f, a, b) for a, b in points], axis=1)
    np.testing.assert_allclose(bilinear_interpolate(f, y, x), ref, atol=1e-12)


def test_backward_equals_numerical_gradient():
    rng = np.random.default_rng(1)
    f = rng.random((2, 4, 5))
    # keep points off grid lines (kinks) but include the border band and outside points
    y = rng.uniform(-1.4, 4.4, (6, 7)) + 0.013
    x = rng.uniform(-1.4, 5.4, (6, 7)) + 0.017
    out, cache = bilinear_interpolate_forward(f, y, x)
    dout = rng.normal(size=out.shape)
    grad = bilinear_interpolate_backward(dout, cache)
    eps = 1e-6
    num = np.zeros_like(f)
    for i in np.ndindex(f.shape):
        fp, fm = f.copy(), f.copy()
        fp[i] += eps
        fm[i] -= eps
        num[i] = np.sum(
            (bilinear_interpolate(fp, y, x) - bilinear_interpolate(fm, y, x)) * dout
        ) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


def test_backward_of_two_dimensional_map_keeps_its_shape_and_dtype():
    f = np.ones((3, 3), np.float32)
    out, cache = bilinear_interpolate_forward(f, [0.5, 5.0], [0.5, 0.5])
    g = bilinear_interpolate_backward(np.ones_like(out), cache)
    assert g.shape == (3, 3) and g.dtype == np.float32
    assert g.sum() == pytest.approx(1.0)  # the second point is outside and adds nothing


def test_axis_weights_sum_to_one_inside_and_zero_outside():
    w = linear_interpolation_weights(np.array([-2.0, -0.5, 0.3, 3.9, 4.5]), 4)
    np.testing.assert_allclose(w.w_lo + w.w_hi, [0, 1, 1, 1, 0])


@pytest.mark.parametrize(
    "feature, message",
    [
        (np.zeros((0, 3)), "non-empty"),
        (np.zeros(3), r"\(C, H, W\)"),
        (np.zeros((2, 2), int), "float"),
    ],
)
def test_bad_maps_give_clear_errors(feature, message):
    with pytest.raises(ValueError, match=message):
        bilinear_interpolate(feature, 0.0, 0.0)


def test_nan_coordinates_give_a_clear_error():
    with pytest.raises(ValueError, match="finite"):
        bilinear_interpolate(np.zeros((2, 2)), np.nan, 0.0)
