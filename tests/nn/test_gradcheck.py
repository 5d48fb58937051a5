"""The gradient checker itself: exact on a known function, and it catches a wrong gradient."""

import numpy as np
import pytest

from rcnn_from_scratch.nn.gradcheck import check_gradient, numerical_gradient, relative_error


def test_numerical_gradient_of_a_cubic_is_three_x_squared():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda v: np.sum(v**3), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # restored


def test_relative_error_is_scale_free_and_zero_for_zeros():
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.1])
    assert relative_error(a, b) == pytest.approx(relative_error(1e6 * a, 1e6 * b))
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, -a) == 1.0


def test_check_gradient_passes_a_right_and_fails_a_wrong_gradient():
    x = np.random.default_rng(0).standard_normal(5)
    assert check_gradient(lambda v: np.sum(np.sin(v)), x, np.cos(x)) < 1e-8
    with pytest.raises(AssertionError, match="gradient check failed"):
        check_gradient(lambda v: np.sum(np.sin(v)), x, np.cos(x) * 1.001)


def test_float32_inputs_are_refused():
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(np.sum, np.ones(3, np.float32))
