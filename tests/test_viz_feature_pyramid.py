"""Figures of notebook 06 (the feature pyramid in miniature): each figure builds and shows the data it
claims, against hand-worked cases and the package's level rule; viz.pyramid's figures read the
miniature model's inspect record."""

import numpy as np
import pytest
from matplotlib.collections import PathCollection

from rcnn_from_scratch.datasets.shapes import make_shapes_sample
from rcnn_from_scratch.models.mask_rcnn_fpn import MaskRCNNFPN, MaskRCNNFPNConfig
from rcnn_from_scratch.roi.multiscale import level_of_boxes
from rcnn_from_scratch.viz.feature_pyramid import (
    SMALL,
    best_anchor_iou,
    object_areas,
    objects_found,
    plot_anchor_coverage,
    plot_found_and_missed,
    plot_object_sizes,
)
from rcnn_from_scratch.viz.pyramid import (
    input_image,
    plot_anchors_per_level,
    plot_level_rule,
    plot_pyramid_levels,
)

SMALL_MODEL = dict(trunk_channels=(8, 8, 16, 16), fpn_channels=16, hidden=32, mask_layers=(8, 8))


def test_object_areas_count_mask_pixels_or_box_areas_without_masks():
    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:5, 3:7] = True  # 12 pixels
    masks[1, 10:20, 10:12] = True  # 20 pixels
    boxes = np.array([[3, 2, 7, 5], [10, 10, 12, 20]], np.float32)
    with_masks = {"boxes": boxes, "masks": masks}
    without = {"boxes": np.array([[0, 0, 4, 5]], np.float32)}
    np.testing.assert_array_equal(object_areas([with_masks, without]), [12, 20, 20])
    assert object_areas([]).shape == (0,)
    with pytest.raises(ValueError, match="masks"):
        object_areas([{"boxes": boxes, "masks": masks[:1]}])
    with pytest.raises(ValueError, match="targets"):
        object_areas([boxes])


def test_best_anchor_iou_is_one_for_an_identical_anchor_and_a_third_for_half_a_box_off():
    boxes = np.array([[0, 0, 10, 10], [100, 100, 120, 110]], np.float32)
    # the second box's best anchor is shifted by half its width: intersection 1/2, union 3/2
    anchors = np.array([[0, 0, 10, 10], [110, 100, 130, 110], [300, 300, 310, 310]], np.float32)
    np.testing.assert_allclose(best_anchor_iou(anchors, boxes), [1, 1 / 3])
    np.testing.assert_allclose(best_anchor_iou(anchors, boxes, chunk=1), [1, 1 / 3])
    np.testing.assert_array_equal(best_anchor_iou(np.zeros((0, 4)), boxes), [0, 0])
    assert best_anchor_iou(anchors, np.zeros((0, 4))).shape == (0,)


def test_an_object_is_found_only_by_a_confident_detection_of_its_class_at_iou_one_half():
    target = {"boxes": np.array([[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], np.float32),
              "labels": np.array([1, 2, 3])}  # fmt: skip
    det = {
        # IoU exactly 0.5 (10 x 10 inside 10 x 20), right class, score 0.5: found
        # right place, wrong class; right place and class, score 0.49; IoU 0.49 (10 x 10 in 10 x 20.4)
        "boxes": np.array(
            [[0, 0, 10, 20], [50, 50, 60, 60], [50, 50, 60, 60], [80, 80, 90, 100.4]], np.float32
        ),  # fmt: skip
        "labels": np.array([1, 1, 2, 3]),
        "scores": np.array([0.5, 0.9, 0.49, 0.9], np.float32),
    }
    np.testing.assert_array_equal(objects_found(det, target), [True, False, False])
    np.testing.assert_array_equal(objects_found(det, target, score_threshold=0.4),
                                  [True, True, False])  # fmt: skip
    np.testing.assert_array_equal(objects_found(det, target, iou_threshold=0.45), [1, 0, 1])
    empty = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int), "scores": np.zeros(0)}
    np.testing.assert_array_equal(objects_found(empty, target), [False] * 3)


def _samples(n=6):
    return [make_shapes_sample(s, variant="multiscale") for s in range(n)]


def test_the_size_histogram_counts_every_object_by_its_mask_area():
    targets = [t for _, t in _samples()]
    fig = plot_object_sizes(targets, bins=12)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    side = np.sqrt([m.sum() for t in targets for m in t["masks"]])
    np.testing.assert_array_equal(heights, np.histogram(side, np.geomspace(4, 256, 13))[0])
    small = int((side**2 < SMALL).sum())
    assert ax.get_title().startswith(f"{len(side)} objects; {small} small")


def test_the_anchor_coverage_scatter_shows_each_objects_size_and_best_anchor_iou():
    targets = [t for _, t in _samples(3)]
    boxes = np.concatenate([t["boxes"] for t in targets])
    areas = object_areas(targets)
    fine = np.array([[0, 0, 8, 8], [40, 40, 72, 72]], np.float32)
    coarse = np.array([[-64, -64, 64, 64]], np.float32)
    fig = plot_anchor_coverage(boxes, {"fine": fine, "coarse": coarse}, areas)
    scatters = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert len(scatters) == 2
    for points, anchors in zip(scatters, (fine, coarse), strict=True):
        xy = points.get_offsets()
        np.testing.assert_allclose(xy[:, 0], np.sqrt(areas))
        np.testing.assert_allclose(xy[:, 1], best_anchor_iou(anchors, boxes))
    with pytest.raises(ValueError, match="areas"):
        plot_anchor_coverage(boxes, {"fine": fine}, areas[:1])


def test_found_and_missed_titles_name_the_arms_that_found_each_object():
    (image, target), (image2, target2) = _samples(2)
    right = {"boxes": target["boxes"][:1], "labels": target["labels"][:1], "scores": np.ones(1)}
    nothing = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int), "scores": np.zeros(0)}
    predictions = {"FPN": [right, nothing], "single level": [nothing, nothing]}
    fig = plot_found_and_missed([image, image2], [target, target2], predictions,
                                [(0, 0), (1, 0), (0, 1)], columns=2)  # fmt: skip
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].endswith("found by FPN") and titles[1].endswith("found by neither")
    assert titles[2].endswith("found by neither") and titles[3] == ""  # a blank fourth panel
    # the ground truth, and FPN's detection where it found the object, labelled with its IoU
    assert len(fig.axes[0].patches) == 2 and len(fig.axes[1].patches) == 1
    np.testing.assert_allclose(fig.axes[0].patches[1].get_xy(), target["boxes"][0, :2] - 0.5)
    assert fig.axes[0].texts[0].get_text() == "IoU 1.00"
    # the crop is square and holds the object's box
    x1, y1, x2, y2 = target["boxes"][0]
    left, right_edge = fig.axes[0].get_xlim()
    bottom, top = fig.axes[0].get_ylim()
    assert np.isclose(right_edge - left, bottom - top)
    assert left < x1 - 0.5 and right_edge > x2 - 0.5 and top < y1 - 0.5 and bottom > y2 - 0.5


@pytest.fixture(scope="module")
def record():
    image, _ = make_shapes_sample(7, variant="multiscale")
    model = MaskRCNNFPN(MaskRCNNFPNConfig(**SMALL_MODEL), seed=3)
    return image, model.inspect(image)


def test_viz_pyramid_reads_the_miniature_record_and_undoes_its_centring(record):
    image, r = record
    np.testing.assert_allclose(input_image(r), image / 255, atol=1e-6)
    assert len(plot_pyramid_levels(r).axes) == 10
    fig = plot_anchors_per_level(r)
    assert [ax.get_title().split(",")[0] for ax in fig.axes] == [
        "P2 '0': size 8", "P3 '1': size 16", "P4 '2': size 32", "P5 '3': size 64",
        "P6 'pool': size 128",
    ]  # fmt: skip


def test_the_level_histogram_of_a_record_counts_the_level_rule_with_canonical_scale_56(record):
    _, r = record
    fig = plot_level_rule(r["proposals"], r["roi_levels"], canonical_scale=56, label="proposals")
    bars = [p.get_height() for p in fig.axes[1].patches]
    expected = np.bincount(level_of_boxes(r["proposals"], 2, 5, 56), minlength=4)
    np.testing.assert_array_equal(bars, expected)
    assert sum(bars) == len(r["proposals"])
