"""Mask R-CNN: the mask branch trains with the rest, predictions carry masks in torchvision's format."""

import numpy as np
import pytest

from rcnn_from_scratch.datasets.shapes import ShapesDataset
from rcnn_from_scratch.models.mask_rcnn import DEFAULT_WEIGHTS, MaskRCNN, MaskRCNNConfig
from rcnn_from_scratch.nn import Adam
from rcnn_from_scratch.roi.roi_align import RoIAlign
from rcnn_from_scratch.roi.roi_pool import RoIPool

SMALL = MaskRCNNConfig(channels=(8, 16, 16), hidden=32, rpn_batch_size=64, rois_per_image=32,
                       mask_layers=(8, 8))  # fmt: skip


def batch(n=2):
    data = ShapesDataset("train", size=n)
    images, targets = zip(*[data[i] for i in range(n)], strict=True)
    return list(images), list(targets)


def test_mask_branch_gets_gradients_and_its_loss_falls():
    images, targets = batch()
    model = MaskRCNN(SMALL, seed=0)
    opt = Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    masks = []
    for step in range(30):
        opt.zero_grad()
        losses = model.loss(images, targets, rng)
        model.backward()
        if step == 0:
            assert "mask" in losses and len(losses) == 5
            names = [n for n, p in model.named_parameters() if not np.any(p.grad != 0)]
            assert names == []
        masks.append(losses["mask"])
        opt.step()
    assert np.mean(masks[-5:]) < 0.7 * np.mean(masks[:5])


def test_both_heads_use_roialign_and_the_ablation_switches_both():
    aligned = MaskRCNN(SMALL)
    assert isinstance(aligned.pooler, RoIAlign) and isinstance(aligned.mask_pooler, RoIAlign)
    assert aligned.mask_pooler.output_size == (14, 14)
    pooled = MaskRCNN(MaskRCNNConfig(**{**SMALL.__dict__, "pooler": "roi_pool"}))
    assert isinstance(pooled.pooler, RoIPool) and isinstance(pooled.mask_pooler, RoIPool)


def test_targets_without_masks_are_a_clear_error():
    images, targets = batch(1)
    del targets[0]["masks"]
    with pytest.raises(ValueError, match="masks"):
        MaskRCNN(SMALL).loss(images, targets, np.random.default_rng(0))


def test_predict_gives_masks_inside_their_boxes(tmp_path):
    images, _ = batch(1)
    model = MaskRCNN(SMALL, seed=2)
    out = model.predict(images[0])
    D = len(out["scores"])
    assert out["masks"].shape == (D, 128, 128) and out["masks"].dtype == bool
    assert set(model.timings) == {"features", "proposals", "heads", "masks"}
    for d in range(D):
        r, c = np.nonzero(out["masks"][d])
        if len(r):
            x1, y1, x2, y2 = out["boxes"][d]
            assert c.min() + 0.5 >= x1 and c.max() + 0.5 <= x2
            assert r.min() + 0.5 >= y1 and r.max() + 0.5 <= y2
    again = MaskRCNN.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(again.predict(images[0])["masks"], out["masks"])


def test_class_agnostic_masks_have_one_channel():
    model = MaskRCNN(MaskRCNNConfig(**{**SMALL.__dict__, "class_agnostic_masks": True}))
    assert model.mask_head.mask_fcn_logits.weight.shape[0] == 1


def test_shipped_weights_segment_shapes():
    assert DEFAULT_WEIGHTS.exists(), "data/mask_rcnn_shapes.npz is part of the package"
    from rcnn_from_scratch.evaluation import evaluate_detections

    model = MaskRCNN.pretrained()
    data = ShapesDataset("eval", size=20)
    preds = [model.predict(image) for image, _ in data]
    result = evaluate_detections(preds, [t for _, t in data], iou_type="segm")
    assert result.map50 > 0.85


def test_an_image_smaller_than_the_stride_is_refused_clearly():
    from rcnn_from_scratch.models.mask_rcnn import MaskRCNN

    with pytest.raises(ValueError, match="too small: this model needs at least 8 x 8"):
        MaskRCNN().predict(np.zeros((2, 3, 3), np.uint8))
