"""R-CNN: a short training run learns, predictions have torchvision's format, weights round-trip,
and the shipped weights detect shapes."""

import numpy as np
import pytest

from rcnn_from_scratch.datasets.shapes import ShapesDataset
from rcnn_from_scratch.evaluation import evaluate_detections
from rcnn_from_scratch.models.rcnn import DEFAULT_WEIGHTS, RCNN
from rcnn_from_scratch.training.rcnn import train_rcnn


@pytest.fixture(scope="module")
def small():
    return train_rcnn(num_images=24, steps=60, seed=1, progress=False)


def test_a_short_training_lowers_the_fine_tuning_loss(small):
    model, report = small
    assert report["final_loss"] < np.log(4) * 0.8  # below chance level for 4 classes
    assert report["foreground"] > 0 and report["regression_pairs"] > 0


def test_predictions_have_torchvision_format_and_timings(small):
    model, _ = small
    image, _ = ShapesDataset("eval", size=1)[0]
    out = model.predict(image)
    D = len(out["boxes"])
    assert out["boxes"].shape == (D, 4) and out["boxes"].dtype == np.float32
    assert out["labels"].dtype == np.int64 and out["scores"].dtype == np.float32
    assert np.all(np.diff(out["scores"]) <= 0) or D < 2 or len(set(out["labels"])) > 1
    assert set(model.timings) == {"proposals", "warping", "cnn", "svm+regression"}


def test_weights_round_trip_gives_identical_predictions(small, tmp_path):
    model, _ = small
    path = model.save(tmp_path / "rcnn.npz")
    again = RCNN.load(path)
    image, _ = ShapesDataset("eval", size=2)[1]
    a, b = model.predict(image), again.predict(image)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-4)


def test_an_untrained_model_says_so():
    with pytest.raises(RuntimeError, match="no SVMs"):
        RCNN().predict(np.zeros((32, 32, 3), np.uint8))


@pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no shipped R-CNN weights")
def test_shipped_weights_detect_shapes():
    model = RCNN.pretrained()
    dataset = ShapesDataset("eval", size=30)
    preds, targets = zip(
        *[(model.predict(image), target) for image, target in dataset], strict=True
    )
    result = evaluate_detections(list(preds), list(targets), iou_type="bbox")
    assert result.map50 > 0.8
