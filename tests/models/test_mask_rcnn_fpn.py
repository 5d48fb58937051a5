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


def _caches_left(model):
    from rcnn_from_scratch.models.mask_rcnn_fpn import _walk

    layers = [layer for _, m in model.parts() for layer in _walk(m)]
    layers += [model.rpn, model.box_roi_pool, model.mask_roi_pool]
    return [type(layer).__name__ for layer in layers if layer._cache is not None]


@pytest.fixture(scope="module")
def inspected():
    image, _ = batch(1)
    out = {}
    for arm in ("fpn", "single_level"):
        model = MaskRCNNFPN(MaskRCNNFPNConfig(arm=arm, **SMALL), seed=4)
        out[arm] = (model, image[0], model.inspect(image[0]))
    return out


def test_inspect_gives_the_trunk_the_pyramid_and_one_anchor_size_per_level(inspected):
    model, image, r = inspected["fpn"]
    assert r["input"].shape == (1, 3, 256, 256) and r["image_size"] == (256, 256)
    np.testing.assert_allclose(r["input"][0].transpose(1, 2, 0) + 0.5, image / 255, atol=1e-6)
    assert [r[f"C{k}"].shape for k in range(2, 6)] == [
        (1, 8, 64, 64), (1, 8, 32, 32), (1, 16, 16, 16), (1, 16, 8, 8)
    ]  # fmt: skip
    assert [r[f"P{k}"].shape for k in range(2, 7)] == [
        (1, 16, 64, 64), (1, 16, 32, 32), (1, 16, 16, 16), (1, 16, 8, 8), (1, 16, 4, 4)
    ]  # fmt: skip
    assert r["levels"] == ("0", "1", "2", "3", "pool")
    for k, name in enumerate(r["levels"]):
        a = r[f"anchors/{name}"]
        h, w = r[f"P{k + 2}"].shape[2:]
        assert a.shape == (3 * h * w, 4) and r[f"objectness/{name}"].shape == (3 * h * w,)
        side = np.sqrt((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))
        np.testing.assert_array_equal(side[1::3], 8 * 2**k)  # the square ones: 8, 16, .., 128
        np.testing.assert_allclose(side, 8 * 2**k, rtol=0.07)  # the others rounded to pixels
        # centred on the cell's corner (torchvision's shifts): the first cell at 0, stride 256 / w
        centre = (a[:, :2] + a[:, 2:]) / 2
        np.testing.assert_allclose(centre[:3], 0, atol=0.5)
        np.testing.assert_allclose(centre[3 * 1, 0] - centre[0, 0], 256 / w, atol=0.5)


def test_inspect_of_the_single_level_arm_has_one_map_at_stride_32(inspected):
    _, _, r = inspected["single_level"]
    assert r["levels"] == ("0",) and not any(k.startswith("P") for k in r if len(k) == 2)
    assert r["anchors/0"].shape == (15 * 8 * 8, 4) and r["objectness/0"].shape == (15 * 8 * 8,)
    assert np.all(r["proposal_levels"] == 0) and np.all(r["roi_levels"] == 0)


@pytest.mark.parametrize("arm", ["fpn", "single_level"])
def test_inspect_records_what_the_rpn_computes_in_the_anchors_order(inspected, arm):
    model, image, r = inspected[arm]
    x = model._tensor([image])
    objectness, _, anchors = model._rpn(model._features(x), (256, 256))
    model._clear()
    flat = np.concatenate([o.transpose(0, 2, 3, 1).reshape(-1) for o in objectness])
    np.testing.assert_array_equal(np.concatenate([r[f"objectness/{n}"] for n in r["levels"]]), flat)
    np.testing.assert_array_equal(np.concatenate([r[f"anchors/{n}"] for n in r["levels"]]), anchors)
    np.testing.assert_array_equal(r["proposals"], model.propose(image))


@pytest.mark.parametrize("arm", ["fpn", "single_level"])
def test_inspect_levels_are_the_level_rule_and_proposals_survive_nms_within_their_level(
    inspected, arm
):
    from rcnn_from_scratch.boxes import box_iou
    from rcnn_from_scratch.roi.multiscale import level_of_boxes

    model, _, r = inspected[arm]
    R = len(r["proposals"])
    assert 0 < R <= model.config.rpn_post_nms_test
    assert r["proposal_scores"].shape == r["proposal_levels"].shape == r["roi_levels"].shape == (R,)
    assert np.all(np.diff(r["proposal_scores"]) <= 0)  # best first
    if arm == "fpn":
        np.testing.assert_array_equal(r["roi_levels"], level_of_boxes(r["proposals"], 2, 5, 56))
        np.testing.assert_array_equal(
            r["mask_levels"], level_of_boxes(r["detections"]["boxes"], 2, 5, 56)
        )
        side = np.sqrt(np.prod(r["proposals"][:, 2:] - r["proposals"][:, :2], axis=1))
        assert np.all(r["roi_levels"][side < 27.9] == 0)  # small boxes: the finest map, P2
        assert np.all(r["roi_levels"][side > 112] == 3)
    for lv in np.unique(r["proposal_levels"]):
        boxes = r["proposals"][r["proposal_levels"] == lv]
        iou = box_iou(boxes, boxes)
        np.fill_diagonal(iou, 0)
        assert iou.max() <= model.config.rpn_nms_thresh + 1e-6


@pytest.mark.parametrize("arm", ["fpn", "single_level"])
def test_inspect_detections_equal_predicts_and_no_cache_is_left(inspected, arm):
    model, image, r = inspected[arm]
    assert _caches_left(model) == []
    out = model.predict(image)
    assert set(out) == set(r["detections"]) and len(out["scores"]) > 0
    for key, value in out.items():
        np.testing.assert_array_equal(r["detections"][key], value)
    assert r["mask_levels"].shape == (len(out["scores"]),)
    assert set(r["timings"]) == {"features", "proposals", "heads", "masks"}


@pytest.mark.parametrize("arm", ["fpn", "single_level"])
def test_an_image_of_any_size_is_padded_to_multiples_of_32_and_boxes_stay_in_the_image(arm):
    model = MaskRCNNFPN(MaskRCNNFPNConfig(arm=arm, **SMALL), seed=3)
    images, _ = batch(1)
    full = images[0].astype(np.float32) / 255
    full[230:], full[:, 210:] = 0.5, 0.5  # mid-grey: what the padding adds
    crop = full[:230, :210]
    r_full, r_crop = model.inspect(full), model.inspect(crop)
    assert r_crop["input"].shape == (1, 3, 256, 224) and r_crop["image_size"] == (230, 210)
    assert not r_crop["input"][..., 230:, :].any() and not r_crop["input"][..., 210:].any()
    for k in range(2, 6):  # the same pixels in, the same maps out, away from the crop's edge
        half = r_crop[f"C{k}"].shape[3] // 2  # beyond the receptive field of the 224-pixel edge
        np.testing.assert_array_equal(r_crop[f"C{k}"][..., :half], r_full[f"C{k}"][..., :half])
    for boxes in (r_crop["proposals"], r_crop["detections"]["boxes"]):
        assert boxes.size and boxes.min() >= 0
        assert boxes[:, [0, 2]].max() <= 210 and boxes[:, [1, 3]].max() <= 230
    out = model.predict(np.zeros((20, 45, 3), np.uint8))  # smaller than one stride-32 cell
    assert out["masks"].shape[1:] == (20, 45) and out["boxes"].shape[1:] == (4,)
    assert model.propose(crop).shape[1:] == (4,)
