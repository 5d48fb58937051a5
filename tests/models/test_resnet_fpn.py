"""The ResNet-50-FPN detectors without torch: torchvision's parameter names, the stages' shapes,
weights files, the builder's arguments. Parity with torchvision itself is in
``test_resnet_fpn_parity.py`` (where torch is installed)."""

import numpy as np
import pytest

from rcnn_from_scratch import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn
from rcnn_from_scratch.checkpoints.torch_format import CheckpointError
from rcnn_from_scratch.models.resnet_fpn import torchvision_name
from rcnn_from_scratch.nn import WeightsError

SMALL = dict(min_size=96, max_size=128)  # a small input keeps the 44-million-parameter model quick


@pytest.fixture(scope="module")
def mask_model():
    return maskrcnn_resnet50_fpn(seed=0, **SMALL)


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)


def test_parameter_names_and_count_are_torchvisions(mask_model):
    shapes = mask_model.parameter_shapes()
    assert len(shapes) == 307  # REALSCALE section 2, measured on torchvision's builder
    assert sum(int(np.prod(s)) for s in shapes.values()) == 44_507_633  # float32 elements
    assert shapes["backbone.body.conv1.weight"] == (64, 3, 7, 7)
    assert shapes["backbone.body.layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert shapes["backbone.body.layer4.2.bn3.running_var"] == (2048,)
    assert shapes["backbone.fpn.inner_blocks.3.0.weight"] == (256, 2048, 1, 1)
    assert shapes["backbone.fpn.layer_blocks.0.0.bias"] == (256,)
    assert shapes["rpn.head.conv.0.0.weight"] == (256, 256, 3, 3)
    assert shapes["rpn.head.cls_logits.weight"] == (3, 256, 1, 1)
    assert shapes["rpn.head.bbox_pred.weight"] == (12, 256, 1, 1)
    assert shapes["roi_heads.box_head.fc6.weight"] == (1024, 12544)
    assert shapes["roi_heads.box_head.fc7.weight"] == (1024, 1024)
    assert shapes["roi_heads.box_predictor.cls_score.weight"] == (91, 1024)
    assert shapes["roi_heads.box_predictor.bbox_pred.weight"] == (364, 1024)
    assert shapes["roi_heads.mask_head.3.0.weight"] == (256, 256, 3, 3)
    assert shapes["roi_heads.mask_predictor.conv5_mask.weight"] == (256, 256, 2, 2)
    assert shapes["roi_heads.mask_predictor.mask_fcn_logits.weight"] == (91, 256, 1, 1)


def test_faster_rcnn_has_no_mask_branch():
    model = fasterrcnn_resnet50_fpn(seed=0, **SMALL)
    shapes = model.parameter_shapes()
    assert len(shapes) == 295
    assert not any(k.startswith("roi_heads.mask") for k in shapes)


def test_our_module_names_map_to_torchvisions_keys():
    assert torchvision_name("rpn.head.conv.weight") == "rpn.head.conv.0.0.weight"
    assert torchvision_name("roi_heads.box_head.fc6.1.bias") == "roi_heads.box_head.fc6.bias"
    assert (
        torchvision_name("roi_heads.mask_head.mask_fcn4.weight") == "roi_heads.mask_head.3.0.weight"
    )
    assert (
        torchvision_name("roi_heads.mask_head.conv5_mask.bias")
        == "roi_heads.mask_predictor.conv5_mask.bias"
    )
    assert torchvision_name("backbone.body.conv1.weight") == "backbone.body.conv1.weight"


def test_inspect_gives_every_stage_with_the_pyramids_strides(mask_model, photo):
    record = mask_model.inspect(photo)
    x = record["input"]
    h, w = record["image_size"]
    assert (h, w) == (96, 128)  # 60 x 80 scaled by min(96 / 60, 128 / 80) = 1.6
    assert x.shape == (1, 3, 96, 128) and x.dtype == np.float32
    for k, stride in zip(range(2, 6), (4, 8, 16, 32), strict=True):
        assert record[f"C{k}"].shape[2:] == (96 // stride, 128 // stride)
        assert record[f"P{k}"].shape == (1, 256, 96 // stride, 128 // stride)
    assert record["P6"].shape == (1, 256, 2, 2)  # P5 subsampled by 2
    total = sum(len(record[f"anchors/{n}"]) for n in ("0", "1", "2", "3", "pool"))
    assert total == 3 * sum((96 // s) * (128 // s) for s in (4, 8, 16, 32)) + 3 * 2 * 2
    R = len(record["proposals"])
    assert 0 < R <= 1000
    # the proposal layer level by level: top-k per level, then NMS inside each level
    for name in ("0", "1", "2", "3", "pool"):
        n = len(record[f"anchors/{name}"])
        assert len(record[f"candidates/{name}"]) == min(1000, n)
        kept = record[f"after_nms/{name}"]
        assert len(kept) <= len(record[f"candidates/{name}"])
    assert R == min(1000, sum(len(record[f"after_nms/{n}"]) for n in ("0", "1", "2", "3", "pool")))
    assert np.all(np.diff(record["proposal_scores"]) <= 0)
    assert record["class_logits"].shape == (R, 91)
    assert record["box_regression"].shape == (R, 364)
    assert record["roi_levels"].shape == (R,)
    assert set(np.unique(record["roi_levels"])) <= {0, 1, 2, 3}
    det = record["detections"]
    D = len(det["boxes"])
    assert det["masks"].shape == (D, 60, 80) and det["masks"].dtype == bool
    assert det["mask_probabilities"].shape == (D, 60, 80)
    assert record["mask_logits"].shape == (D, 91, 28, 28)
    assert {"backbone", "rpn", "box_head", "total"} <= set(record["timings"])


def test_predict_returns_the_documented_types(mask_model, photo):
    out = mask_model.predict(photo)
    D = len(out["boxes"])
    assert out["boxes"].shape == (D, 4) and out["boxes"].dtype == np.float32
    assert out["labels"].dtype == np.int64 and out["scores"].dtype == np.float32
    assert np.all(out["labels"] >= 1) and np.all(out["labels"] <= 90)
    assert np.all(np.diff(out["scores"]) <= 0)
    assert mask_model.categories[1] == "person" and len(mask_model.categories) == 91


def test_npz_round_trip_gives_the_same_detections(tmp_path, photo):
    model = fasterrcnn_resnet50_fpn(seed=1, box_score_thresh=0.0, **SMALL)
    before = model.predict(photo)
    path = model.save(tmp_path / "faster.npz")
    again = fasterrcnn_resnet50_fpn(weights=path)
    assert again.config == model.config
    after = again.predict(photo)
    np.testing.assert_array_equal(before["labels"], after["labels"])
    np.testing.assert_allclose(before["boxes"], after["boxes"], atol=1e-4)
    with pytest.raises(WeightsError, match="fasterrcnn_resnet50_fpn"):
        maskrcnn_resnet50_fpn(weights=path)


def test_a_state_dict_that_does_not_fit_is_refused_naming_the_key():
    model = fasterrcnn_resnet50_fpn(seed=0, **SMALL)
    state = model.state_dict()
    state["rpn.head.cls_logits.bias"] = np.zeros(4, np.float32)
    with pytest.raises(CheckpointError, match="rpn.head.cls_logits.bias"):
        model.load_state_dict(state)
    del state["rpn.head.cls_logits.bias"]
    with pytest.raises(CheckpointError, match="rpn.head.cls_logits.bias"):
        model.load_state_dict(state)


def test_builder_arguments_are_checked():
    with pytest.raises(TypeError, match="rpn_fg_iou_thresh"):
        maskrcnn_resnet50_fpn(rpn_fg_iou_thresh=0.7)
    with pytest.raises(ValueError, match="box_score_thresh"):
        maskrcnn_resnet50_fpn(box_score_thresh="0.5")
    with pytest.raises(ValueError, match="min_size"):
        maskrcnn_resnet50_fpn(min_size=0)
    with pytest.raises(ValueError, match="min_size"):
        maskrcnn_resnet50_fpn(min_size=900, max_size=800)
    with pytest.raises(WeightsError, match="no such"):
        maskrcnn_resnet50_fpn(weights="missing.pth")


def test_bad_images_are_refused_clearly(mask_model):
    with pytest.raises(ValueError, match="image"):
        mask_model.predict(np.zeros((4, 5, 6, 7), np.uint8))
