"""The batch forms (torchvision's ``assign_targets_to_anchors`` and ``select_training_samples``) are
the per-image functions applied image after image with one generator: same draws, same targets."""

import numpy as np
import pytest

from rcnn_from_scratch.targets.roi_targets import sample_roi_targets, select_training_samples
from rcnn_from_scratch.targets.rpn_targets import assign_rpn_targets, assign_targets_to_anchors


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    targets = []
    for g in (3, 0, 2):  # an image without objects in the middle
        xy = rng.uniform(0, 80, (g, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(8, 40, (g, 2))], axis=1).astype(np.float32)
        targets.append({"boxes": boxes, "labels": rng.integers(1, 4, g)})
    xy = rng.uniform(0, 100, (300, 2))
    anchors = np.concatenate([xy, xy + rng.uniform(4, 48, (300, 2))], axis=1).astype(np.float32)
    proposals = [anchors[k * 50 : k * 50 + 40 + 10 * k] for k in range(3)]
    return anchors, proposals, targets


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


def test_assign_targets_to_anchors_equals_per_image_calls_with_one_generator():
    anchors, _, targets = _batch()
    kwargs = {"batch_size_per_image": 32, "positive_fraction": 0.5}
    batch = assign_targets_to_anchors(anchors, targets, np.random.default_rng(7), **kwargs)
    rng = np.random.default_rng(7)
    _assert_same(batch, [assign_rpn_targets(anchors, t["boxes"], rng, **kwargs) for t in targets])
    assert batch[1].labels.max() == 0  # no objects: every anchor background or ignored


def test_select_training_samples_equals_per_image_calls_with_one_generator():
    _, proposals, targets = _batch()
    kwargs = {"batch_size_per_image": 16, "positive_fraction": 0.25}
    batch = select_training_samples(proposals, targets, np.random.default_rng(3), **kwargs)
    rng = np.random.default_rng(3)
    expected = [
        sample_roi_targets(p, t["boxes"], t["labels"], rng, **kwargs)
        for p, t in zip(proposals, targets, strict=True)
    ]
    _assert_same(batch, expected)
    assert [len(s.labels) for s in batch] == [16, 16, 16]


def test_select_training_samples_needs_one_proposal_set_per_image():
    _, proposals, targets = _batch()
    with pytest.raises(ValueError, match="one entry per image"):
        select_training_samples(proposals[:2], targets, np.random.default_rng(0))
