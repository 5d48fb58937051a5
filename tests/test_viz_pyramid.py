"""Figures of notebook 05 (the full-scale Mask R-CNN), on a small fake ``inspect`` record."""

import numpy as np
import pytest

from rcnn_from_scratch.proposals.anchors import AnchorGenerator
from rcnn_from_scratch.viz.pyramid import (
    LEVEL_NAMES,
    architecture_rows,
    input_image,
    plot_anchors_per_level,
    plot_architecture_shapes,
    plot_full_scale_detections,
    plot_level_rule,
    plot_proposals_per_level,
    plot_pyramid_levels,
    shape_table,
    shapes_by_rule,
)

CATEGORIES = ["__background__", "person", "cup"]


def fake_record(h=120, w=150, seed=0):
    """What ``inspect`` returns, at a small size: the input padded to 32, C2..C5 and P2..P6 at
    strides 4..64, torchvision's five anchor levels, 40 proposals, 2 detections with masks."""
    rng = np.random.default_rng(seed)
    Hp, Wp = -(-h // 32) * 32, -(-w // 32) * 32
    record = {"input": rng.normal(size=(1, 3, Hp, Wp)).astype(np.float32), "image_size": (h, w)}
    for k, c in zip(range(2, 6), (16, 32, 64, 128), strict=True):
        s = 2**k
        record[f"C{k}"] = rng.normal(size=(1, c, Hp // s, Wp // s)).astype(np.float32)
    for k in range(2, 6):
        s = 2**k
        record[f"P{k}"] = rng.normal(size=(1, 8, Hp // s, Wp // s)).astype(np.float32)
    record["P6"] = record["P5"][..., ::2, ::2]
    sizes = [record[f"P{k}"].shape[2:] for k in range(2, 7)]
    gen = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    anchors = gen((Hp, Wp), sizes)
    bounds = np.cumsum([0] + [3 * a * b for a, b in sizes])
    for k, name in enumerate(LEVEL_NAMES):
        record[f"anchors/{name}"] = anchors[bounds[k] : bounds[k + 1]]
    xy = rng.uniform(0, [w - 40, h - 40], (40, 2))
    wh = rng.uniform(5, 40, (40, 2))
    record["proposals"] = np.hstack([xy, xy + wh]).astype(np.float32)
    record["proposal_scores"] = rng.uniform(size=40).astype(np.float32)
    record["proposal_levels"] = np.arange(40) % 5
    record["roi_levels"] = np.arange(40) % 4
    record["class_logits"] = np.zeros((40, 3), np.float32)
    boxes = np.array([[10, 10, 60, 70], [70, 20, 140, 110]], np.float32)
    record["detections_resized"] = {"boxes": boxes}
    masks = np.zeros((2, h, w), bool)
    masks[0, 20:60, 15:55] = True
    masks[1, 30:100, 80:130] = True
    record["detections"] = {"boxes": boxes, "labels": np.array([1, 2]),
                            "scores": np.array([0.9, 0.3], np.float32), "masks": masks}  # fmt: skip
    record["mask_logits"] = np.zeros((2, 3, 28, 28), np.float32)
    return record


RECORD = fake_record()


def test_shape_rows_give_strides_4_to_64_and_the_anchor_total():
    rows = {r[0]: r for r in architecture_rows(RECORD)}
    # input 128 x 160: C2..C5 strides 4..32, P2..P6 4..64 (P6: 128 // 2 = 64, 160 // 3 = 53)
    assert [rows[f"C{k}"][3] for k in range(2, 6)] == [
        "stride 4",
        "stride 8",
        "stride 16",
        "stride 32",
    ]
    assert rows["P6"][3] == "stride (64, 53)" and rows["P5"][1] == "backbone.fpn['3']"
    assert rows["C3"][2] == "1 x 32 x 16 x 20"
    total = 3 * (32 * 40 + 16 * 20 + 8 * 10 + 4 * 5 + 2 * 3)
    assert rows["anchors, all levels"][2] == f"{total:,} x 4"
    assert rows["anchors P4"][3] == "8 x 10 cells x 3, size 128"
    assert rows["RoIs per level"][2] == "P2: 10, P3: 10, P4: 10, P5: 10"
    assert rows["masks"][2] == "2 x 120 x 150"
    assert shape_table(RECORD).count("\n") == len(rows) + 1


def test_shape_rows_skip_stages_a_record_lacks_and_name_what_is_missing():
    small = {k: RECORD[k] for k in ("input", "image_size", "C2", "P2")}
    assert [r[0] for r in architecture_rows(small)] == ["input", "C2", "P2"]
    with pytest.raises(ValueError, match="image_size"):
        architecture_rows({"input": RECORD["input"]})


def test_input_image_undoes_the_normalisation():
    x = np.full((1, 3, 2, 2), 0.5, np.float32) - np.array([0.485, 0.456, 0.406])[:, None, None]
    x /= np.array([0.229, 0.224, 0.225])[:, None, None]
    np.testing.assert_allclose(input_image({"input": x}), 0.5, atol=1e-6)
    with pytest.raises(ValueError, match="input"):
        input_image({"input": np.zeros((3, 4, 4))})


def test_architecture_figure_is_one_table():
    fig = plot_architecture_shapes(RECORD)
    assert len(fig.axes) == 1 and len(fig.axes[0].tables) == 1


def test_pyramid_figure_shows_input_four_stages_and_five_levels_with_strides():
    fig = plot_pyramid_levels(RECORD)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 10 and titles[0] == "input 128 x 160"
    assert titles[1] == "C2: 16 x 32 x 40, stride 4"
    assert titles[9] == "P6 'pool': 8 x 2 x 3, stride (64, 53)"
    # each panel is the mean |activation| over channels
    np.testing.assert_allclose(fig.axes[5].images[0].get_array(), np.abs(RECORD["P2"][0]).mean(0))


def test_anchor_figure_draws_the_three_anchors_of_the_centre_cell_at_each_level():
    fig = plot_anchors_per_level(RECORD)
    assert len(fig.axes) == 5 and all(len(ax.patches) == 3 for ax in fig.axes)
    assert "size 32, stride 4" in fig.axes[0].get_title()
    assert "32 x 40 cells x 3 = 3,840 anchors" in fig.axes[0].get_title()
    # P3's centre cell: image centre (60, 75) // 8 -> cell (7, 9), top-left corner (56, 72)
    a = RECORD["anchors/1"][(7 * 20 + 9) * 3 + 1]  # its square anchor, side 64, about (72, 56)
    np.testing.assert_array_equal(a, [72 - 32, 56 - 32, 72 + 32, 56 + 32])
    x, y = fig.axes[1].patches[1].get_xy()
    assert (x, y) == (a[0] - 0.5, a[1] - 0.5)


def test_proposal_figure_has_one_panel_per_level_and_caps_what_it_draws():
    fig = plot_proposals_per_level(RECORD, show=5)
    assert [len(ax.patches) for ax in fig.axes] == [5] * 5
    assert fig.axes[4].get_title().startswith("P6 'pool': 8 proposals")
    image = np.zeros((240, 300, 3), np.uint8)  # twice the resized size: boxes scale by 2
    fig = plot_proposals_per_level(RECORD, image=image, show=1)
    best = np.flatnonzero(RECORD["proposal_levels"] == 0)
    best = best[np.argmax(RECORD["proposal_scores"][best])]
    np.testing.assert_allclose(fig.axes[0].patches[0].get_width(),
                               2 * np.ptp(RECORD["proposals"][best, [0, 2]]), rtol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="proposal_levels"):
        plot_proposals_per_level({**RECORD, "proposal_levels": np.zeros(3)})


def test_level_rule_staircase_matches_the_closed_form_and_steps_at_112_224_448():
    fig = plot_level_rule()
    assert len(fig.axes) == 1
    (line,) = fig.axes[0].lines[:1]
    s, level = line.get_xdata(), line.get_ydata()
    expected = np.clip(np.floor(4 + np.log2(s.astype(np.float64) / 224) + 1e-6), 2, 5)
    np.testing.assert_array_equal(level, expected)
    marked = sorted(ln.get_xdata()[0] for ln in fig.axes[0].lines[1:])
    assert marked == [112, 224, 448]
    assert level[s < 111.9].max() == 2 and level[s > 448.1].min() == 5


def test_level_rule_with_rois_adds_a_histogram_of_their_levels():
    side = np.array([20, 100, 130, 300, 500, 1000], np.float32)
    boxes = np.stack([0 * side, 0 * side, side, side], 1)
    fig = plot_level_rule(boxes)
    assert len(fig.axes) == 2
    heights = [p.get_height() for p in fig.axes[1].patches]
    assert heights == [2, 1, 1, 2]  # P2: 20, 100; P3: 130; P4: 300; P5: 500, 1000
    fig = plot_level_rule(roi_levels=RECORD["roi_levels"])
    assert [p.get_height() for p in fig.axes[1].patches] == [10, 10, 10, 10]
    with pytest.raises(ValueError, match="roi_levels"):
        plot_level_rule(boxes, roi_levels=[0, 1])


def test_detection_figure_draws_what_scores_above_the_threshold_with_mask_outlines():
    image = np.zeros((120, 150, 3), np.uint8)
    fig = plot_full_scale_detections(image, RECORD["detections"], CATEGORIES, 0.5)
    (ax,) = fig.axes
    assert len(ax.patches) == 1 and ax.texts[0].get_text() == "person 0.90"
    assert len(ax.collections) == 1  # one mask contour
    fig = plot_full_scale_detections(image, RECORD["detections"], CATEGORIES, 0.0)
    assert [t.get_text() for t in fig.axes[0].texts] == ["person 0.90", "cup 0.30"]
    empty = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int), "scores": np.zeros(0)}
    assert (
        plot_full_scale_detections(image, empty, CATEGORIES)
        .axes[0]
        .get_title()
        .startswith("0 of 0")
    )


def test_shapes_by_rule_give_realscale_table_for_480_by_640():
    # REALSCALE.md section 0 (measured with torchvision): 800 x 1066 padded to 800 x 1088, C2..C5
    # 256x200x272 .. 2048x25x34, 'pool' 13 x 17, 217,413 anchors, 'pool' stride (61, 64)
    record = shapes_by_rule((480, 640, 3))
    assert record["image_size"] == (800, 1066) and record["input"].shape == (1, 3, 800, 1088)
    assert [record[f"C{k}"].shape[1:] for k in range(2, 6)] == [
        (256, 200, 272), (512, 100, 136), (1024, 50, 68), (2048, 25, 34)]  # fmt: skip
    assert record["P6"].shape == (1, 256, 13, 17)
    assert sum(len(record[f"anchors/{n}"]) for n in LEVEL_NAMES) == 217_413
    rows = {r[0]: r for r in architecture_rows(record)}
    assert rows["P6"][3] == "stride (61, 64)"
    np.testing.assert_array_equal(record["anchors/0"][:3], [[-23, -11, 23, 11], [-16, -16, 16, 16],
                                                            [-11, -23, 11, 23]])  # fmt: skip


def test_detection_figure_tints_only_the_shown_masks_and_checks_their_shape():
    image = np.zeros((120, 150, 3), np.uint8)
    shown = plot_full_scale_detections(image, RECORD["detections"], CATEGORIES, 0.5)
    pixels = shown.axes[0].images[0].get_array()
    masks = RECORD["detections"]["masks"]
    assert np.all(pixels[masks[0]] > 0) and np.all(pixels[~masks[0]] == 0)  # the 0.3 one untinted
    bad = {**RECORD["detections"], "masks": masks[:, :10]}
    with pytest.raises(ValueError, match="masks"):
        plot_full_scale_detections(image, bad, CATEGORIES)
