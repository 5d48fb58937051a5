"""SHAPES.md's multi-scale variant keeps "the same classes, colours and rules as above": the
variant's numbers differ from the standard data set's in exactly the points the specification
lists, and the carried-over rules (background, colours, classes, objects across, splits) hold
on the variant's own samples."""

from dataclasses import asdict

import numpy as np
import pytest

from rcnn_from_scratch.datasets.shapes import (
    EVAL_SEED_START,
    MULTISCALE,
    ShapesDataset,
    ShapesSpec,
    draw_layout,
    make_shapes_sample,
)


@pytest.fixture(scope="module")
def layouts():
    return [draw_layout(s, MULTISCALE) for s in range(400)]


def test_the_variant_changes_only_what_the_specification_lists():
    standard, variant = asdict(ShapesSpec()), asdict(MULTISCALE)
    changed = {k: variant[k] for k in variant if variant[k] != standard[k]}
    assert changed == {
        "image_size": 256,  # 256 x 256
        "min_objects": 2,  # 2 to 8 objects
        "max_objects": 8,
        "min_size": 4,  # s log-uniform in [4, 80]
        "max_size": 80,
        "size_distribution": "log_uniform",
        "paint_order": "decreasing_size",  # large objects first
        "min_visible_pixels": 16,  # fewer than 16 visible pixels: removed
    }
    # kept: colour distance 80, box IoU at most 0.3, 50 placement tries
    assert (variant["min_colour_distance"], variant["max_overlap_iou"]) == (80.0, 0.3)
    assert variant["placement_tries"] == 50


def test_background_channels_span_0_to_255_and_colours_are_80_away(layouts):
    backgrounds = np.array([bg for bg, _ in layouts])
    assert backgrounds.min() >= 0 and backgrounds.max() <= 255
    assert backgrounds.min() < 10 and backgrounds.max() > 245  # uniform over the whole range
    distances = [np.linalg.norm(np.subtract(s.colour, bg)) for bg, lay in layouts for s in lay]
    assert min(distances) >= 80 and max(distances) > 200
    colours = np.array([s.colour for _, lay in layouts for s in lay])
    assert colours.min() >= 0 and colours.max() <= 255


def test_the_three_classes_come_about_equally_often(layouts):
    labels = np.array([s.label for _, lay in layouts for s in lay])
    counts = np.bincount(labels, minlength=4)
    assert counts[0] == 0 and set(np.unique(labels)) == {1, 2, 3}
    assert np.all(np.abs(counts[1:] / counts.sum() - 1 / 3) < 0.05)


def test_circles_and_squares_are_8_to_160_pixels_across(layouts):
    # s in [4, 80] is the radius or half side: 2 s pixels across (a triangle of circumradius s
    # is s sqrt(3) wide and 1.5 s tall)
    for _, layout in layouts:
        for shape in layout:
            x1, y1, x2, y2 = shape.box
            w, h = x2 - x1, y2 - y1
            if shape.label in (1, 2):
                assert w == pytest.approx(2 * shape.s) and h == pytest.approx(2 * shape.s)
            else:
                assert w == pytest.approx(shape.s * np.sqrt(3)) and h == pytest.approx(
                    1.5 * shape.s
                )
    across = [2 * s.s for _, lay in layouts for s in lay if s.label in (1, 2)]
    assert min(across) == 8 and max(across) == 160


def test_the_variants_splits_are_the_standard_seed_streams():
    train, evaluation = (ShapesDataset(split, variant="multiscale") for split in ("train", "eval"))
    assert len(evaluation) == 200 and evaluation.seeds[0] == EVAL_SEED_START
    assert max(train.seeds) < min(evaluation.seeds)  # disjoint
    image, target = evaluation[3]
    expected, expected_target = make_shapes_sample(EVAL_SEED_START + 3, variant="multiscale")
    assert np.array_equal(image, expected)
    assert np.array_equal(target["masks"], expected_target["masks"])
