"""The Module contract (module.py) as the layers use it: accumulation, one cache, state dicts."""

import numpy as np
import pytest

from rcnn_from_scratch.backbones.convnet import make_backbone
from rcnn_from_scratch.nn.activations import ReLU
from rcnn_from_scratch.nn.linear import Linear
from rcnn_from_scratch.nn.module import Sequential


def test_gradients_accumulate_until_zeroed():
    layer = Linear(3, 2, rng=0)
    x = np.ones((1, 3), np.float32)
    for _ in range(2):
        layer(x)
        layer.backward(np.ones((1, 2), np.float32))
    np.testing.assert_allclose(layer.bias.grad, [2, 2])
    layer.zero_grad()
    assert not layer.bias.grad.any()


def test_sequential_backward_runs_in_reverse_and_a_second_backward_fails():
    net = Sequential(Linear(4, 3, rng=0), ReLU(), Linear(3, 2, rng=1))
    x = np.ones((2, 4), np.float32)
    out = net(x)
    dx = net.backward(np.ones_like(out))
    # by hand: the chain rule through the three layers
    h = x @ net[0].weight.data.T + net[0].bias.data
    expected = ((np.ones((2, 2)) @ net[2].weight.data) * (h > 0)) @ net[0].weight.data
    np.testing.assert_allclose(dx, expected, rtol=1e-6)
    with pytest.raises(RuntimeError, match="without a forward"):
        net.backward(np.ones((2, 2), np.float32))


def test_to_float64_casts_parameters_and_gradients():
    net = make_backbone((4,), seed=0).to(np.float64)
    assert all(p.data.dtype == p.grad.dtype == np.float64 for p in net.parameters())


def test_state_dict_round_trip_and_shape_errors():
    a, b = make_backbone((4, 8), seed=0), make_backbone((4, 8), seed=1)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).random((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))
    with pytest.raises(ValueError, match="missing"):
        b.load_state_dict({})
    bad = a.state_dict()
    bad["0.weight"] = np.zeros((1, 1))
    with pytest.raises(ValueError, match="0.weight"):
        b.load_state_dict(bad)
