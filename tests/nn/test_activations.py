"""ReLU: values, gradient (0 at exactly 0, as PyTorch), numerical gradients."""

import numpy as np

from rcnn_from_scratch.nn.activations import ReLU
from rcnn_from_scratch.nn.gradcheck import check_module_gradients


def test_relu_by_hand_with_zero_gradient_at_zero():
    relu = ReLU()
    np.testing.assert_array_equal(relu(np.array([-2.0, 0.0, 3.0])), [0, 0, 3])
    np.testing.assert_array_equal(relu.backward(np.array([5.0, 5.0, 5.0])), [0, 0, 5])


def test_relu_gradient_equals_numerical_gradient_off_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # off the kink
    errors = check_module_gradients(ReLU(), [x], rng)
    assert max(errors.values()) < 1e-6, errors


def test_relu_keeps_float32():
    relu = ReLU()
    assert relu(np.ones(3, np.float32)).dtype == np.float32
    assert relu.backward(np.ones(3, np.float32)).dtype == np.float32
