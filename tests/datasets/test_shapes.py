"""The shapes generator against shared/SHAPES.md, point by point."""

import numpy as np
import pytest

from rcnn_from_scratch.boxes import box_iou
from rcnn_from_scratch.datasets.shapes import (
    CLASS_NAMES,
    ShapesDataset,
    ShapesSpec,
    make_shapes_sample,
    shape_mask,
)
from rcnn_from_scratch.viz.shapes import plot_samples

SEEDS = range(60)


@pytest.fixture(scope="module")
def samples():
    return [make_shapes_sample(s) for s in SEEDS]


def test_images_are_128_square_rgb_uint8_and_targets_have_torchvision_dtypes(samples):
    for image, t in samples:
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        n = len(t["labels"])
        assert t["boxes"].shape == (n, 4) and t["boxes"].dtype == np.float32
        assert t["labels"].dtype == np.int64 and set(t["labels"].tolist()) <= {1, 2, 3}
        assert t["masks"].shape == (n, 128, 128) and t["masks"].dtype == bool


def test_one_to_four_objects_and_every_class_occurs(samples):
    counts = [len(t["labels"]) for _, t in samples]
    # 1 to 4 are drawn uniformly; an object is sometimes dropped (no room, or hidden), never added
    assert set(counts) <= {0, 1, 2, 3, 4} and {1, 2, 3, 4} <= set(counts)
    assert 2.0 <= np.mean(counts) <= 2.6
    assert set(np.concatenate([t["labels"] for _, t in samples]).tolist()) == {1, 2, 3}
    assert CLASS_NAMES[0] == "background"


def test_background_is_one_uniform_colour_and_objects_are_far_from_it(samples):
    for image, t in samples:
        covered = t["masks"].any(axis=0)
        background = image[~covered]
        assert len(np.unique(background, axis=0)) == 1
        for m in t["masks"]:
            colours = np.unique(image[m], axis=0)
            assert len(colours) == 1  # each object is one flat colour
            assert np.linalg.norm(colours[0].astype(float) - background[0]) >= 80


def test_masks_are_visible_pixels_disjoint_and_large_enough(samples):
    for _, t in samples:
        assert np.all(t["masks"].sum(axis=0) <= 1)
        assert np.all(t["masks"].sum(axis=(1, 2)) >= 20)


def test_box_is_the_tight_box_of_the_visible_mask(samples):
    for _, t in samples:
        for box, m in zip(t["boxes"], t["masks"], strict=True):
            rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
            assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


def test_visible_boxes_respect_the_overlap_rule_loosely(samples):
    # the rule is on the shapes' full boxes; visible boxes can only be smaller, so overlap stays low
    for _, t in samples:
        iou = box_iou(t["boxes"], t["boxes"])
        assert np.all(iou[np.triu_indices(len(iou), 1)] <= 0.6)


def test_shape_masks_follow_the_pixel_centre_rule():
    square = shape_mask(2, cx=10.0, cy=10.0, s=3, height=20, width=20)
    assert square.sum() == 36 and square[7:13, 7:13].all()  # centres 7.5..12.5 within [7, 13]
    circle = shape_mask(1, 10.0, 10.0, 8, 20, 20)
    assert abs(circle.sum() - np.pi * 64) < 0.05 * np.pi * 64
    tri = shape_mask(3, 50.0, 50.0, 20, 100, 100)
    rows = np.flatnonzero(tri.any(1))
    assert rows[0] + 0.5 >= 30 and rows[-1] + 0.5 <= 60  # apex at cy - s, base at cy + s / 2
    assert tri[rows[-1]].sum() > tri[rows[0]].sum()  # upright: wide at the bottom
    area = 3 * np.sqrt(3) / 4 * 20**2
    assert abs(tri.sum() - area) < 0.05 * area


def test_sizes_stay_in_range_and_shapes_stay_inside_the_image(samples):
    for _, t in samples:
        w = t["boxes"][:, 2] - t["boxes"][:, 0]
        assert np.all(w <= 2 * 24 + 1)
        assert np.all(t["boxes"] >= 0) and np.all(t["boxes"] <= 128)


def test_a_seed_determines_the_sample():
    a, ta = make_shapes_sample(1234)
    b, tb = make_shapes_sample(1234)
    assert np.array_equal(a, b) and all(np.array_equal(ta[k], tb[k]) for k in ta)
    c, _ = make_shapes_sample(1235)
    assert not np.array_equal(a, c)


def test_train_and_eval_streams_never_share_a_seed():
    train, evaluation = ShapesDataset("train"), ShapesDataset("eval")
    assert len(evaluation) == 200 and len(train) == 10**6
    assert max(train.seeds) < min(evaluation.seeds)
    image, _ = evaluation[0]
    assert np.array_equal(image, make_shapes_sample(10**9)[0])
    with pytest.raises(ValueError, match="split"):
        ShapesDataset("test")
    with pytest.raises(IndexError):
        evaluation[200]


def test_larger_images_with_more_objects_for_speed_comparisons():
    image, t = make_shapes_sample(7, ShapesSpec(image_size=512, max_objects=12, min_objects=8))
    assert image.shape == (512, 512, 3) and len(t["labels"]) >= 6


def test_the_figure_draws_boxes_with_class_names():
    fig = plot_samples([make_shapes_sample(3)], titles=["seed 3"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts and all(t in CLASS_NAMES for t in texts)
