"""Linear, ReLU, Flatten, MaxPool2d, Sequential: gradients, semantics, PyTorch parity."""

import numpy as np
import pytest

from rcnn_from_scratch.nn import Flatten, Linear, MaxPool2d, ReLU, Sequential, make_backbone
from rcnn_from_scratch.nn.gradcheck import check_module_gradients


def off_kinks(rng, shape):
    """Inputs away from 0 (ReLU's kink) and without ties (max-pool's)."""
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) / np.prod(shape)
    return x - 0.5 + 0.37 / np.prod(shape)  # never exactly 0


@pytest.mark.parametrize(
    "layer, shape",
    [
        (Linear(6, 4, rng=0), (5, 6)),
        (ReLU(), (3, 7)),
        (Flatten(), (2, 3, 2, 2)),
        (MaxPool2d(2), (2, 2, 6, 6)),
        (MaxPool2d(3, 2, 1), (2, 2, 7, 5)),
        (MaxPool2d(2, 1), (1, 2, 5, 5)),
    ],
    ids=["linear", "relu", "flatten", "maxpool2", "maxpool3s2p1", "maxpool2s1"],
)
def test_layer_gradients_equal_numerical_gradients(layer, shape):
    rng = np.random.default_rng(0)
    layer.to(np.float64)
    errors = check_module_gradients(layer, [off_kinks(rng, shape)], rng)
    assert max(errors.values()) < 1e-6, errors


def test_max_pool_routes_the_gradient_to_the_first_maximum_on_ties():
    x = np.ones((1, 1, 2, 2))
    pool = MaxPool2d(2)
    pool(x)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1, 0], [0, 0]])


def test_whole_backbone_gradient_check():
    rng = np.random.default_rng(1)
    net = make_backbone((3, 4), rng=rng).to(np.float64)
    errors = check_module_gradients(net, [off_kinks(rng, (1, 3, 8, 8))], rng)
    assert max(errors.values()) < 1e-6, errors


def test_backbone_has_stride_eight_and_torchvision_style_names():
    net = make_backbone((16, 32, 64), rng=0)
    out = net(np.zeros((2, 3, 128, 128), np.float32))
    assert out.shape == (2, 64, 16, 16) and net.stride == 8 and net.out_channels == 64
    assert [n for n, _ in net.named_parameters()][:2] == ["0.weight", "0.bias"]


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
    net(np.ones((2, 4), np.float32))
    net.backward(np.ones((2, 2), np.float32))
    with pytest.raises(RuntimeError):
        net.backward(np.ones((2, 2), np.float32))


def test_state_dict_round_trip_and_shape_errors():
    a, b = make_backbone((4, 8), rng=0), make_backbone((4, 8), rng=1)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).random((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))
    with pytest.raises(ValueError, match="missing"):
        b.load_state_dict({})
    bad = a.state_dict()
    bad["0.weight"] = np.zeros((1, 1))
    with pytest.raises(ValueError, match="0.weight"):
        b.load_state_dict(bad)


def test_max_pool_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = off_kinks(rng, (2, 3, 9, 7))
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 1)]:
        expected = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p).numpy()
        np.testing.assert_array_equal(MaxPool2d(k, s, p)(x), expected)
