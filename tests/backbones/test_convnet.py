"""The small CNN backbone: stride and shapes, names, seeded initialisation, gradient of the whole stack."""

import numpy as np
import pytest

from rcnn_from_scratch.backbones.convnet import make_backbone
from rcnn_from_scratch.nn.gradcheck import check_module_gradients


def test_backbone_has_stride_eight_and_torchvision_style_names():
    net = make_backbone((16, 32, 64), seed=0)
    out = net(np.zeros((2, 3, 128, 128), np.float32))
    assert out.shape == (2, 64, 16, 16) and out.dtype == np.float32
    assert net.stride == 8 and net.out_channels == 64
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"]


def test_whole_backbone_gradients_equal_numerical_gradients():
    rng = np.random.default_rng(1)
    net = make_backbone((3, 4), seed=rng, input_grad=True).to(np.float64)
    x = rng.permutation(3 * 8 * 8).reshape(1, 3, 8, 8) / 192 - 0.4987  # no ties, no zeros
    errors = check_module_gradients(net, [x], rng)
    assert set(errors) >= {"input", "0.weight", "3.bias"}
    assert max(errors.values()) < 1e-6, errors


def test_by_default_no_gradient_flows_into_the_image():
    net = make_backbone((4,), seed=0)
    out = net(np.ones((1, 3, 8, 8), np.float32))
    assert net.backward(np.ones_like(out)) is None
    assert net[0].weight.grad.any()


def test_the_same_seed_gives_the_same_backbone():
    a, b, c = (make_backbone((4, 8), seed=s).state_dict() for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_bad_channels_are_an_error():
    with pytest.raises(ValueError, match="channels"):
        make_backbone(())
