"""The small Mask R-CNN over a feature pyramid and its single-level arm: the whole model's gradient
against central differences, the level rule in use, training, prediction, weights files."""

import numpy as np
import pytest

from rcnn_from_scratch.datasets.shapes import ShapesDataset
from rcnn_from_scratch.models.mask_rcnn_fpn import (
    DEFAULT_WEIGHTS,
    MaskRCNNFPN,
    MaskRCNNFPNConfig,
    SharedHead,
)
from rcnn_from_scratch.nn import Adam
from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error
from rcnn_from_scratch.proposals.rpn import RPNHead

TINY = dict(trunk_channels=(2, 3, 3, 4), fpn_channels=3, hidden=6, mask_layers=(2,),
            pooled_size=2, rpn_batch_size=16, rois_per_image=8)  # fmt: skip
SMALL = dict(trunk_channels=(8, 8, 16, 16), fpn_channels=16, hidden=32, mask_layers=(8, 8),
             rpn_batch_size=64, rois_per_image=32)  # fmt: skip


def tiny_problem(rng):
    """A 64 x 64 random image (no max-pool ties), two objects, proposals of many sizes."""
    image = rng.random((64, 64, 3))
    masks = np.zeros((2, 64, 64), bool)
    masks[0, 4:12, 6:14] = True  # 8 px: level rule -> P2
    masks[1, 20:60, 16:60] = True  # ~42 px: P3
    boxes = np.array([[6, 4, 14, 12], [16, 20, 60, 60]], np.float32)
    target = {"boxes": boxes, "labels": np.array([1, 3]), "masks": masks}
    centres = rng.uniform(10, 54, (12, 2))
    sides = np.geomspace(4, 60, 12)[:, None] * np.ones((1, 2))
    props = np.clip(np.hstack([centres - sides / 2, centres + sides / 2]), 0, 64)
    return image, target, props.astype(np.float32)


@pytest.mark.parametrize("arm", ["fpn", "single_level"])
def test_the_whole_models_gradient_equals_central_differences(arm):
    rng = np.random.default_rng(0)
    image, target, props = tiny_problem(rng)
    model = MaskRCNNFPN(MaskRCNNFPNConfig(arm=arm, **TINY), seed=1).to(np.float64)
    for name, p in model.named_parameters():  # zero biases put ReLU inputs exactly on the kink
        if name.endswith("bias"):
            p.data[...] = rng.uniform(0.05, 0.2, p.data.shape)

    def total(_=None):
        losses = model.loss([image], [target], np.random.default_rng(5), proposals=[props])
        return sum(losses.values())

    for p in model.parameters():
        p.zero_grad()
    losses = model.loss([image], [target], np.random.default_rng(5), proposals=[props])
    assert all(v > 0 for k, v in losses.items() if k != "box_regression")
    if arm == "fpn":
        assert len(set(model.box_roi_pool.last_levels.tolist())) >= 2  # the level rule at work
    model.backward()
    checked = 0
    for name, p in model.named_parameters():
        # a few entries of every tensor (each one is two forward passes of the whole model)
        picks = rng.choice(p.data.size, min(3, p.data.size), replace=False)
        numeric, analytic = [], []
        for i in picks:
            idx = np.unravel_index(i, p.data.shape)
            old = p.data[idx]
            p.data[idx] = old + 1e-6
            up = total()
            p.data[idx] = old - 1e-6
            down = total()
            p.data[idx] = old
            numeric.append((up - down) / 2e-6)
            analytic.append(p.grad[idx])
        model._grads = None
        err = relative_error(np.array(analytic), np.array(numeric))
        assert err < 1e-5, (name, err, analytic, numeric)
        checked += 1
    assert checked == len(model.parameters())


def test_a_head_shared_across_levels_sums_its_gradients_over_the_levels():
    rng = np.random.default_rng(3)
    head = RPNHead(2, 3, rng=rng).to(np.float64)
    shared = SharedHead(head)
    maps = [rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((1, 2, 2, 2))]
    outs = shared(maps)
    r = [(rng.standard_normal(o.shape), rng.standard_normal(d.shape)) for o, d in outs]

    def loss(_=None):
        return sum(
            float(np.sum(o * a) + np.sum(d * b))
            for (o, d), (a, b) in zip(shared(maps), r, strict=True)
        )

    head.zero_grad()
    shared(maps)
    dmaps = shared.backward(r)
    for m, dm in zip(maps, dmaps, strict=True):
        assert relative_error(dm, numerical_gradient(loss, m)) < 1e-6
    for name, p in head.named_parameters():
        assert relative_error(p.grad, numerical_gradient(loss, p.data)) < 1e-6, name


def test_the_arms_read_five_levels_or_one_map_at_stride_32():
    fpn = MaskRCNNFPN(MaskRCNNFPNConfig(**SMALL))
    x = np.zeros((1, 3, 256, 256), np.float32)
    features = fpn._features(x)
    assert {k: v.shape[2:] for k, v in features.items()} == {
        "0": (64, 64), "1": (32, 32), "2": (16, 16), "3": (8, 8), "pool": (4, 4)
    }  # fmt: skip
    _, _, anchors = fpn._rpn(features, (256, 256))
    assert len(anchors) == 3 * (64**2 + 32**2 + 16**2 + 8**2 + 4**2)
    single = MaskRCNNFPN(MaskRCNNFPNConfig(arm="single_level", **SMALL))
    features = single._features(x)
    assert list(features) == ["0"] and features["0"].shape == (1, 16, 8, 8)
    _, _, anchors = single._rpn(features, (256, 256))
    assert len(anchors) == 15 * 8 * 8  # five sizes x three ratios on the one map
    assert single.fpn is None and not any(
        n.startswith("backbone.fpn") for n, _ in single.named_parameters()
    )


def batch(n=2):
    data = ShapesDataset("train", size=n, variant="multiscale")
    images, targets = zip(*[data[i] for i in range(n)], strict=True)
    return list(images), list(targets)


@pytest.mark.parametrize("arm", ["fpn", "single_level"])
def test_every_parameter_learns_and_the_loss_falls(arm):
    images, targets = batch()
    model = MaskRCNNFPN(MaskRCNNFPNConfig(arm=arm, **SMALL), seed=0)
    opt = Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    totals = []
    for step in range(8):
        opt.zero_grad()
        losses = model.loss(images, targets, rng)
        model.backward()
        if step == 0:
            assert [n for n, p in model.named_parameters() if not np.any(p.grad)] == []
        totals.append(sum(losses.values()))
        opt.step()
    assert np.mean(totals[-3:]) < 0.8 * np.mean(totals[:2])
    with pytest.raises(RuntimeError, match="loss"):
        model.backward()


def test_predict_gives_masks_inside_boxes_and_a_saved_model_predicts_the_same(tmp_path):
    images, _ = batch(1)
    model = MaskRCNNFPN(MaskRCNNFPNConfig(**SMALL), seed=2)
    out = model.predict(images[0])
    D = len(out["scores"])
    assert out["boxes"].shape == (D, 4) and out["masks"].shape == (D, 256, 256)
    assert out["masks"].dtype == bool and set(model.timings) == {
        "features",
        "proposals",
        "heads",
        "masks",
    }
    for d in range(D):
        r, c = np.nonzero(out["masks"][d])
        if len(r):
            x1, y1, x2, y2 = out["boxes"][d]
            assert c.min() + 0.5 >= x1 and c.max() + 0.5 <= x2
    assert model.propose(images[0], top_n=50).shape[0] <= 50
    again = MaskRCNNFPN.load(model.save(tmp_path / "m.npz"))
    assert again.config == model.config
    np.testing.assert_array_equal(again.predict(images[0])["masks"], out["masks"])
    single = MaskRCNNFPN(MaskRCNNFPNConfig(arm="single_level", **SMALL))
    path = single.save(tmp_path / "s.npz")
    assert MaskRCNNFPN.pretrained("single_level", path=path).config.arm == "single_level"
    with pytest.raises(ValueError, match="arm"):
        MaskRCNNFPN.pretrained("fpn", path=path)


def test_missing_weights_name_the_training_command_and_bad_arms_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train mask-rcnn-fpn --arm single_level"):
        MaskRCNNFPN.pretrained("single_level", path=tmp_path / "absent.npz")
    with pytest.raises(ValueError, match="arm"):
        MaskRCNNFPN.pretrained("c4")
    with pytest.raises(ValueError, match="arm"):
        MaskRCNNFPNConfig(arm="c4")
    assert set(DEFAULT_WEIGHTS) == {"fpn", "single_level"}
    images, targets = batch(1)
    del targets[0]["masks"]
    with pytest.raises(ValueError, match="masks"):
        MaskRCNNFPN(MaskRCNNFPNConfig(**SMALL)).loss(images, targets, np.random.default_rng(0))
