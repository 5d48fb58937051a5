"""ResNet-50 body: torchvision's keys, the folded bottleneck against the unfolded definition, the
output strides, and (with torch) the whole body against torchvision's resnet50."""

import numpy as np
import pytest

from rcnn_from_scratch.backbones.resnet import Bottleneck, ResNetBody
from rcnn_from_scratch.nn.activations import relu_forward
from rcnn_from_scratch.nn.batch_norm import FrozenBatchNorm2d, frozen_batch_norm
from rcnn_from_scratch.nn.conv import conv2d_reference


def randomise_batch_norms(module, rng):
    """Batch-norm statistics far from the identity, so that folding them matters."""
    for bn in module.batch_norms():
        C = len(bn.weight.data)
        bn.weight.data[...] = rng.uniform(0.5, 1.5, C)
        bn.bias.data[...] = rng.normal(0, 0.1, C)
        bn.running_mean.data[...] = rng.normal(0, 0.1, C)
        bn.running_var.data[...] = rng.uniform(0.5, 2.0, C)
    module.fold()


def unfolded_bottleneck(block, x):
    """The block as the paper draws it: loop-reference convolutions, then batch norm, ReLU, add."""

    def conv_bn(conv, bn, inp):
        y = conv2d_reference(inp, conv.weight.data, None, conv.stride, conv.padding)
        stats = (bn.weight.data, bn.bias.data, bn.running_mean.data, bn.running_var.data)
        return frozen_batch_norm(y, *stats, bn.eps)

    out = relu_forward(conv_bn(block.conv1, block.bn1, x))[0]
    out = relu_forward(conv_bn(block.conv2, block.bn2, out))[0]
    out = conv_bn(block.conv3, block.bn3, out)
    shortcut = x if block.downsample is None else conv_bn(*block.downsample.layers, x)
    return relu_forward(out + shortcut)[0]


# --- the names ----------------------------------------------------------------------------------


def test_body_has_the_265_torchvision_keys_with_the_documented_shapes():
    params = dict(ResNetBody(rng=0).named_parameters())
    assert len(params) == 265
    per_layer = {f"layer{i}": sum(k.startswith(f"layer{i}.") for k in params) for i in range(1, 5)}
    assert per_layer == {"layer1": 50, "layer2": 65, "layer3": 95, "layer4": 50}  # REALSCALE 2
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_var": (64,),
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.running_var": (256,),
        "layer1.1.conv1.weight": (64, 256, 1, 1),
        "layer2.0.conv2.weight": (128, 128, 3, 3),
        "layer3.0.downsample.0.weight": (1024, 512, 1, 1),
        "layer3.5.bn3.bias": (1024,),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
    }
    assert {k: params[k].shape for k in expected} == expected
    assert "layer1.1.downsample.0.weight" not in params  # only block 0 has a shortcut conv
    assert list(params)[:6] == [
        "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
        "layer1.0.conv1.weight",
    ]  # fmt: skip


def test_every_parameter_is_frozen_float32_and_backward_refuses():
    body = ResNetBody((1, 1, 1, 1), rng=0)
    assert all(p.grad is None and p.data.dtype == np.float32 for p in body.parameters())
    with pytest.raises(NotImplementedError, match="inference only: frozen batch norm"):
        body.backward([np.zeros((1, 256, 1, 1), np.float32)])


def test_random_initialisation_is_seeded_and_batch_norm_starts_as_identity():
    a, b, c = (ResNetBody((1, 1, 1, 1), rng=s).state_dict() for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv1.weight"], c["conv1.weight"])
    np.testing.assert_array_equal(a["layer2.0.bn2.running_var"], 1)
    np.testing.assert_array_equal(a["layer2.0.bn2.bias"], 0)
    # He-normal: std sqrt(2 / fan_in), fan_in = 64 * 3 * 3 for layer1's 3x3
    assert abs(a["layer1.0.conv2.weight"].std() / np.sqrt(2 / 576) - 1) < 0.05


# --- the bottleneck -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "in_channels, planes, stride, downsample, size",
    [(16, 4, 1, False, (7, 9)), (8, 4, 1, True, (6, 6)), (8, 4, 2, True, (9, 11))],
)
@pytest.mark.parametrize("eps", [1e-5, 0.0])
def test_folded_bottleneck_equals_conv_batch_norm_relu_residual(
    in_channels, planes, stride, downsample, size, eps
):
    rng = np.random.default_rng(7)
    block = Bottleneck(in_channels, planes, stride, downsample, eps=eps, rng=rng).to(np.float64)
    randomise_batch_norms(block, rng)
    x = rng.standard_normal((2, in_channels) + size)
    out = block(x)
    Ho, Wo = ((s - 1) // stride + 1 for s in size)
    assert out.shape == (2, 4 * planes, Ho, Wo) and out.dtype == np.float64
    np.testing.assert_allclose(out, unfolded_bottleneck(block, x), rtol=1e-10, atol=1e-12)


def test_set_eps_and_load_state_dict_refold():
    rng = np.random.default_rng(2)
    a = Bottleneck(8, 2, downsample=True, rng=0).to(np.float64)
    b = Bottleneck(8, 2, downsample=True, rng=1).to(np.float64)
    randomise_batch_norms(b, rng)
    b.set_eps(0.0)
    a.load_state_dict(b.state_dict())
    a.set_eps(0.0)
    x = rng.standard_normal((1, 8, 5, 5))
    np.testing.assert_allclose(a(x), unfolded_bottleneck(b, x), rtol=1e-10, atol=1e-12)
    assert all(bn.eps == 0.0 for bn in a.batch_norms())
    # editing a statistic in place changes nothing until fold() is called
    before = a(x)
    a.bn3.running_var.data[...] *= 4
    np.testing.assert_array_equal(a(x), before)
    a.fold()
    assert not np.allclose(a(x), before)
    np.testing.assert_allclose(a(x), unfolded_bottleneck(a, x), rtol=1e-10, atol=1e-12)


def test_block_that_changes_shape_without_downsample_is_an_error():
    with pytest.raises(ValueError, match="downsample"):
        Bottleneck(64, 64, stride=1, downsample=False)
    with pytest.raises(ValueError, match="x must have shape"):
        Bottleneck(16, 4)(np.zeros((1, 8, 4, 4), np.float32))


# --- the body -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size, expected", [((64, 96), [16, 8, 4, 2]), ((65, 97), [17, 9, 5, 3])])
def test_c2_to_c5_have_strides_4_to_32_and_documented_channels(size, expected):
    body = ResNetBody((1, 1, 1, 1), rng=0)
    features = body(np.random.default_rng(0).standard_normal((1, 3) + size).astype(np.float32))
    assert body.out_channels_list == [256, 512, 1024, 2048] and body.strides == [4, 8, 16, 32]
    assert [f.shape[1] for f in features] == body.out_channels_list
    assert [f.shape[2] for f in features] == expected  # ceil(H / stride)
    if size == (64, 96):
        assert [f.shape[2:] for f in features] == [(64 // s, 96 // s) for s in body.strides]
    assert all(f.dtype == np.float32 for f in features)


def test_empty_batch_gives_empty_feature_maps():
    features = ResNetBody((1, 1, 1, 1), rng=0)(np.zeros((0, 3, 32, 32), np.float32))
    expected = [(0, 256, 8, 8), (0, 512, 4, 4), (0, 1024, 2, 2), (0, 2048, 1, 1)]
    assert [f.shape for f in features] == expected


@pytest.mark.parametrize("bad", [np.zeros((1, 4, 8, 8), np.float32), np.zeros((3, 8, 8)),
                                 np.zeros((1, 3, 8, 8), np.int64)])  # fmt: skip
def test_bad_image_batch_is_a_value_error(bad):
    with pytest.raises(ValueError, match="x must"):
        ResNetBody((1, 1, 1, 1), rng=0)(bad)


def test_frozen_batch_norm_children_are_torchvision_layers():
    body = ResNetBody((1, 1, 1, 1), rng=0)
    assert len(body.batch_norms()) == 1 + 4 * 4  # the stem, 3 per block, 1 per downsample
    assert all(isinstance(bn, FrozenBatchNorm2d) for bn in body.batch_norms())


# --- against torchvision ------------------------------------------------------------------------


def test_keys_and_shapes_equal_torchvision_resnet50_state_dict():
    pytest.importorskip("torch")
    from torchvision.models import resnet50

    theirs = {
        k: tuple(v.shape)
        for k, v in resnet50(weights=None).state_dict().items()
        if not k.startswith("fc.") and not k.endswith("num_batches_tracked")
    }
    ours = {k: p.shape for k, p in ResNetBody(rng=0).named_parameters()}
    assert list(ours) == list(theirs)
    assert ours == theirs


def test_body_equals_torchvision_resnet50_with_random_statistics_and_eps_zero():
    torch = pytest.importorskip("torch")
    from torchvision.models import resnet50

    torch.manual_seed(0)
    model = resnet50(weights=None).eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            C = m.num_features
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0, 0.1, generator=gen)
                m.running_mean.normal_(0, 0.1, generator=gen)
                m.running_var.copy_(torch.rand(C, generator=gen) * 1.5 + 0.5)
            m.eps = 0.0
    state = {
        k: v.numpy()
        for k, v in model.state_dict().items()
        if not k.startswith("fc.") and not k.endswith("num_batches_tracked")
    }
    body = ResNetBody(rng=0)
    body.load_state_dict(state)
    body.set_eps(0.0)

    x = np.random.default_rng(3).standard_normal((1, 3, 128, 160)).astype(np.float32)
    with torch.no_grad():
        t = model.maxpool(model.relu(model.bn1(model.conv1(torch.from_numpy(x)))))
        expected = []
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            t = layer(t)
            expected.append(t.numpy())
    for ours, theirs in zip(body(x), expected, strict=True):
        assert ours.shape == theirs.shape
        # measured about 1e-6; eps 1e-5 instead of 0 would give 4e-5 to 1.4e-4
        assert np.abs(ours - theirs).max() / np.abs(theirs).max() < 1e-5
