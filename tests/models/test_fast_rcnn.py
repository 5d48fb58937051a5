"""Fast R-CNN: end-to-end gradients reach the backbone, a short run learns, predictions are well formed."""

import numpy as np

from rcnn_from_scratch.datasets.shapes import ShapesDataset
from rcnn_from_scratch.models.fast_rcnn import FastRCNN, FastRCNNConfig
from rcnn_from_scratch.nn import Adam


def batch(n=2):
    data = ShapesDataset("train", size=n)
    images, targets = zip(*[data[i] for i in range(n)], strict=True)
    # proposals: jittered ground truth and a few background boxes, no selective search needed
    rng = np.random.default_rng(0)
    proposals = [
        np.vstack(
            [t["boxes"] + rng.normal(0, 2, t["boxes"].shape), [[0, 0, 30, 30], [90, 90, 127, 127]]]
        )
        .clip(0, 128)
        .astype(np.float32)
        for t in targets
    ]
    return list(images), list(targets), proposals


def test_loss_backward_reaches_every_parameter_and_training_lowers_the_loss():
    images, targets, proposals = batch()
    model = FastRCNN(FastRCNNConfig(channels=(8, 16, 16), hidden=32), seed=0)
    opt = Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    first = None
    for step in range(30):
        opt.zero_grad()
        losses = model.loss(images, targets, proposals, rng)
        model.backward()
        if step == 0:
            first = sum(losses.values())
            assert all(np.any(p.grad != 0) for p in model.parameters())
        opt.step()
    assert sum(losses.values()) < 0.5 * first


def test_roi_align_variant_and_detections_have_torchvision_format():
    images, targets, proposals = batch(1)
    model = FastRCNN(FastRCNNConfig(channels=(8, 16, 16), hidden=32, pooler="roi_align"), seed=1)
    out = model.detect(images[0], proposals[0])
    assert out["boxes"].dtype == np.float32 and out["labels"].dtype == np.int64
    assert out["boxes"].shape == (len(out["scores"]), 4)
    assert set(model.timings) == {"features", "heads"}


def test_shipped_weights_detect_shapes():
    import pytest

    from rcnn_from_scratch.evaluation import evaluate_detections
    from rcnn_from_scratch.models.fast_rcnn import DEFAULT_WEIGHTS

    if not DEFAULT_WEIGHTS.exists():
        pytest.skip("no shipped Fast R-CNN weights")
    model = FastRCNN.pretrained()
    data = ShapesDataset("eval", size=20)
    preds = [model.predict(image) for image, _ in data]
    assert evaluate_detections(preds, [t for _, t in data], iou_type="bbox").map50 > 0.8
