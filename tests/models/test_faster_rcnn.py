"""Faster R-CNN: gradients reach every parameter, a short run learns, weights round-trip, the shipped
model detects."""

import numpy as np
import pytest

from rcnn_from_scratch.datasets.shapes import ShapesDataset
from rcnn_from_scratch.models.faster_rcnn import DEFAULT_WEIGHTS, FasterRCNN, FasterRCNNConfig
from rcnn_from_scratch.nn import Adam

SMALL = FasterRCNNConfig(channels=(8, 16, 16), hidden=32, rpn_batch_size=64, rois_per_image=32)


def batch(n=2):
    data = ShapesDataset("train", size=n)
    images, targets = zip(*[data[i] for i in range(n)], strict=True)
    return list(images), list(targets)


def test_loss_backward_reaches_every_parameter_and_training_lowers_the_loss():
    images, targets = batch()
    model = FasterRCNN(SMALL, seed=0)
    opt = Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    history = []
    for step in range(40):
        opt.zero_grad()
        losses = model.loss(images, targets, rng)
        model.backward()
        if step == 0:
            assert set(losses) == {"rpn_objectness", "rpn_box", "classification", "box_regression"}
            assert all(np.any(p.grad != 0) for p in model.parameters())
        history.append(sum(losses.values()))
        opt.step()
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:5])


def test_backward_without_loss_is_a_clear_error():
    with pytest.raises(RuntimeError, match="loss"):
        FasterRCNN(SMALL).backward()


def test_predict_has_torchvision_format_and_weights_round_trip(tmp_path):
    images, _ = batch(1)
    model = FasterRCNN(SMALL, seed=1)
    out = model.predict(images[0])
    assert out["boxes"].dtype == np.float32 and out["labels"].dtype == np.int64
    assert out["scores"].dtype == np.float32 and out["boxes"].shape == (len(out["scores"]), 4)
    assert set(model.timings) == {"features", "proposals", "heads"}
    path = model.save(tmp_path / "m.npz")
    again = FasterRCNN.load(path)
    assert again.config == SMALL
    for (n, p), (m, q) in zip(model.named_parameters(), again.named_parameters(), strict=True):
        assert n == m and np.array_equal(p.data, q.data)
    np.testing.assert_array_equal(again.predict(images[0])["boxes"], out["boxes"])


def test_loading_another_models_weights_is_a_clear_error(tmp_path):
    from rcnn_from_scratch.models.fast_rcnn import FastRCNN, FastRCNNConfig

    path = FastRCNN(FastRCNNConfig(channels=(8,), hidden=8)).save(tmp_path / "fast.npz")
    with pytest.raises(ValueError, match="fast_rcnn"):
        FasterRCNN.load(path)


def test_shipped_weights_detect_shapes():
    assert DEFAULT_WEIGHTS.exists(), "data/faster_rcnn_shapes.npz is part of the package"
    from rcnn_from_scratch.evaluation import evaluate_detections

    model = FasterRCNN.pretrained()
    data = ShapesDataset("eval", size=20)
    preds = [model.predict(image) for image, _ in data]
    assert evaluate_detections(preds, [t for _, t in data], iou_type="bbox").map50 > 0.85
