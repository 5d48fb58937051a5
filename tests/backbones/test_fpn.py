"""The feature pyramid: torchvision's names, gradients against central differences (2x and odd
sizes), BackboneWithFPN's wiring, and (with torch) outputs and gradients against torchvision's FPN."""

import numpy as np
import pytest

from rcnn_from_scratch.backbones.fpn import BackboneWithFPN, FeaturePyramidNetwork
from rcnn_from_scratch.backbones.resnet import ResNetBody
from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error

SIZES = {"odd": [(9, 11), (5, 6), (3, 3)], "double": [(8, 12), (4, 6), (2, 3)]}


def random_features(rng, channels, sizes, n=1, dtype=np.float64):
    return [
        rng.standard_normal((n, c, h, w)).astype(dtype)
        for c, (h, w) in zip(channels, sizes, strict=True)
    ]


def test_parameter_names_are_torchvisions_16_keys():
    fpn = FeaturePyramidNetwork([256, 512, 1024, 2048], 256, rng=0)
    shapes = {k: p.shape for k, p in fpn.named_parameters()}
    expected = {}
    for i, c in enumerate([256, 512, 1024, 2048]):
        expected[f"inner_blocks.{i}.0.weight"] = (256, c, 1, 1)
        expected[f"inner_blocks.{i}.0.bias"] = (256,)
    for i in range(4):
        expected[f"layer_blocks.{i}.0.weight"] = (256, 256, 3, 3)
        expected[f"layer_blocks.{i}.0.bias"] = (256,)
    assert shapes == expected and list(shapes) == list(expected)  # REALSCALE section 3, in order


@pytest.mark.parametrize("sizes", SIZES.values(), ids=SIZES.keys())
def test_output_names_and_shapes_and_pool_is_the_last_level_subsampled(sizes):
    rng = np.random.default_rng(0)
    fpn = FeaturePyramidNetwork([2, 3, 4], 5, rng=rng)
    out = fpn(random_features(rng, [2, 3, 4], sizes, n=2, dtype=np.float32))
    assert list(out) == ["0", "1", "2", "pool"] == fpn.names
    assert [out[str(i)].shape for i in range(3)] == [(2, 5) + s for s in sizes]
    np.testing.assert_array_equal(out["pool"], out["2"][:, :, ::2, ::2])
    assert all(p.dtype == np.float32 for p in out.values())


def test_top_down_sum_by_hand_with_identity_laterals():
    # 1x1 laterals = identity, 3x3 outputs = identity (centre tap): P_i is the top-down sum itself
    fpn = FeaturePyramidNetwork([1, 1], 1, extra_pool=False, rng=0)
    for block in fpn.inner_blocks.layers:
        block[0].weight.data[...] = 1
    for block in fpn.layer_blocks.layers:
        block[0].weight.data[...] = 0
        block[0].weight.data[0, 0, 1, 1] = 1
    fine = np.arange(12, dtype=np.float64).reshape(1, 1, 3, 4)
    coarse = np.array([[[[100.0, 200.0]]]])  # (1, 1, 1, 2) -> nearest to 3 x 4
    out = fpn([fine, coarse])
    np.testing.assert_array_equal(out["1"], coarse)
    expected = fine + np.array([100, 100, 200, 200])  # column j reads coarse column floor(j / 2)
    np.testing.assert_array_equal(out["0"], expected)


@pytest.mark.parametrize("sizes", SIZES.values(), ids=SIZES.keys())
def test_fpn_gradients_equal_numerical_gradients(sizes):
    rng = np.random.default_rng(5)
    fpn = FeaturePyramidNetwork([2, 3, 2], 2, rng=rng).to(np.float64)
    for p in fpn.parameters():  # non-zero biases, so that their gradients are tested too
        p.data[...] += rng.normal(0, 0.1, p.shape)
    x = random_features(rng, [2, 3, 2], sizes)
    r = {name: rng.standard_normal(p.shape) for name, p in fpn(x).items()}

    def loss(_=None):
        out = fpn(x)
        return float(sum(np.sum(out[k] * r[k]) for k in r))

    fpn.zero_grad()
    fpn(x)
    dx = fpn.backward(r)
    analytic = {name: p.grad.copy() for name, p in fpn.named_parameters()}
    errors = {f"x{i}": relative_error(dx[i], numerical_gradient(loss, x[i])) for i in range(3)}
    for name, p in fpn.named_parameters():
        errors[name] = relative_error(analytic[name], numerical_gradient(loss, p.data))
    assert len(errors) == 3 + 12
    assert max(errors.values()) < 1e-7, errors


def test_missing_gradient_names_count_as_zero():
    rng = np.random.default_rng(1)
    fpn = FeaturePyramidNetwork([2, 3, 2], 2, rng=rng).to(np.float64)
    x = random_features(rng, [2, 3, 2], SIZES["odd"])
    out = fpn(x)
    g = rng.standard_normal(out["pool"].shape)
    only_pool = fpn.backward({"pool": g})
    grad_pool_only = fpn.inner_blocks[0][0].weight.grad.copy()
    fpn.zero_grad()
    fpn(x)
    zeros = {k: np.zeros_like(v) for k, v in out.items() if k != "pool"}
    explicit = fpn.backward({**zeros, "pool": g})
    for a, b in zip(only_pool, explicit, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fpn.inner_blocks[0][0].weight.grad, grad_pool_only, rtol=1e-12)
    # 'pool' is the coarsest output subsampled: it depends on the coarsest input only
    assert np.abs(only_pool[-1]).max() > 0
    assert not only_pool[0].any() and not only_pool[1].any()


def test_a_second_backward_and_bad_inputs_are_errors():
    rng = np.random.default_rng(0)
    fpn = FeaturePyramidNetwork([2, 3], 4, rng=rng)
    x = random_features(rng, [2, 3], [(4, 4), (2, 2)], dtype=np.float32)
    out = fpn(x)
    with pytest.raises(ValueError, match="grads"):
        fpn.backward({"7": out["0"]})
    fpn(x)
    fpn.backward({"0": np.ones_like(out["0"])})
    with pytest.raises(RuntimeError, match="without a forward"):
        fpn.backward({"0": np.ones_like(out["0"])})
    with pytest.raises(ValueError, match="features"):
        fpn(x[:1])
    with pytest.raises(ValueError, match=r"features\[1\]"):
        fpn([x[0], x[0]])
    with pytest.raises(ValueError, match="in_channels_list"):
        FeaturePyramidNetwork([], 4)


def test_backbone_with_fpn_names_shapes_and_wiring():
    body = ResNetBody((1, 1, 1, 1), rng=0)
    net = BackboneWithFPN(body, body.out_channels_list, out_channels=8, rng=1)
    names = [k for k, _ in net.named_parameters()]
    assert names[0] == "body.conv1.weight" and "fpn.inner_blocks.0.0.weight" in names
    assert names[-1] == "fpn.layer_blocks.3.0.bias" and net.out_channels == 8
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 96)).astype(np.float32)
    C, P = net.forward_with_body(x)
    assert [c.shape[1:] for c in C] == [(256, 16, 24), (512, 8, 12), (1024, 4, 6), (2048, 2, 3)]
    assert {k: v.shape for k, v in P.items()} == {
        "0": (1, 8, 16, 24), "1": (1, 8, 8, 12), "2": (1, 8, 4, 6), "3": (1, 8, 2, 3),
        "pool": (1, 8, 1, 2),
    }  # fmt: skip
    again = net(x)
    for k in P:
        np.testing.assert_array_equal(again[k], P[k])
        np.testing.assert_array_equal(net.fpn(body(x))[k], P[k])


# --- against torchvision ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes", [[(32, 40), (16, 20), (8, 10), (4, 5)], [(25, 34), (13, 17), (7, 9), (4, 5)]],
    ids=["double", "odd"],
)  # fmt: skip
def test_fpn_equals_torchvision_forward_and_gradients(sizes):
    torch = pytest.importorskip("torch")
    from torchvision.ops import FeaturePyramidNetwork as TorchFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    channels = [8, 16, 32, 64]
    torch.manual_seed(0)
    theirs = TorchFPN(channels, 8, extra_blocks=LastLevelMaxPool()).double()
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0, 0.2)
    ours = FeaturePyramidNetwork(channels, 8, rng=0).to(np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})

    rng = np.random.default_rng(4)
    x = random_features(rng, channels, sizes)
    xt = [torch.from_numpy(a.copy()).requires_grad_() for a in x]
    out_t = theirs({str(i): t for i, t in enumerate(xt)})
    out = ours(x)
    assert list(out) == list(out_t) == ["0", "1", "2", "3", "pool"]
    for k in out:
        np.testing.assert_allclose(out[k], out_t[k].detach().numpy(), rtol=1e-10, atol=1e-10)

    r = {k: rng.standard_normal(v.shape) for k, v in out.items()}
    sum((out_t[k] * torch.from_numpy(r[k])).sum() for k in r).backward()
    dx = ours.backward(r)
    for a, t in zip(dx, xt, strict=True):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-10, atol=1e-10)
    ours_grads = {k: p.grad for k, p in ours.named_parameters()}
    for k, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_grads[k], p.grad.numpy(), rtol=1e-10, atol=1e-10)
