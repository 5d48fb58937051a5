"""The shapes generator against shared/SHAPES.md, point by point."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.path import Path

from rcnn_from_scratch.boxes import box_iou
from rcnn_from_scratch.datasets.shapes import (
    CLASS_NAMES,
    Shape,
    ShapesDataset,
    ShapesSpec,
    draw_layout,
    make_shapes_sample,
    masks_to_tight_boxes,
    render,
    shape_mask,
)
from rcnn_from_scratch.viz.shapes import draw_detections, draw_sample, plot_samples

SEEDS = range(60)


@pytest.fixture(scope="module")
def samples():
    return [make_shapes_sample(s) for s in SEEDS]


@pytest.fixture(scope="module")
def layouts():
    return [draw_layout(s) for s in range(300)]


def test_images_are_128_square_rgb_uint8_and_targets_have_torchvision_dtypes(samples):
    for image, t in samples:
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        n = len(t["labels"])
        assert t["boxes"].shape == (n, 4) and t["boxes"].dtype == np.float32
        assert t["labels"].dtype == np.int64 and set(t["labels"].tolist()) <= {1, 2, 3}
        assert t["masks"].shape == (n, 128, 128) and t["masks"].dtype == bool
    assert CLASS_NAMES == ("background", "circle", "square", "triangle")


def test_one_to_four_objects_of_every_class_and_size_8_to_24(layouts):
    counts = [len(shapes) for _, shapes in layouts]
    # 1 to 4 drawn uniformly (mean 2.5); an object finding no place is dropped, none is ever added
    assert set(counts) <= {0, 1, 2, 3, 4} and {1, 2, 3, 4} <= set(counts)
    assert 2.2 <= np.mean(counts) <= 2.6
    shapes = [s for _, layout in layouts for s in layout]
    assert {s.label for s in shapes} == {1, 2, 3}
    sizes = {s.s for s in shapes}
    assert sizes == set(range(8, 25))  # every integer size occurs, nothing outside


def test_every_shape_lies_wholly_inside_the_image(layouts):
    boxes = np.array([s.box for _, layout in layouts for s in layout])
    assert boxes.min() >= 0 and boxes.max() <= 128
    assert boxes.min() < 1 and boxes.max() > 127  # the centres do reach the borders


def test_no_two_shape_boxes_overlap_with_iou_above_03(layouts):
    for _, layout in layouts:
        iou = box_iou([s.box for s in layout], [s.box for s in layout])
        assert np.all(iou[np.triu_indices(len(layout), 1)] <= 0.3)


def test_colours_are_at_least_80_from_the_background(layouts):
    distances = [
        np.linalg.norm(np.subtract(s.colour, bg)) for bg, layout in layouts for s in layout
    ]
    assert min(distances) >= 80 and max(distances) > 200
    assert all(0 <= c <= 255 for bg, _ in layouts for c in bg)


def test_image_shows_the_last_painted_shape_at_each_pixel_and_masks_its_visible_part():
    for seed in range(20):
        background, layout = draw_layout(seed)
        image, t = make_shapes_sample(seed)
        full = [shape_mask(s.label, s.cx, s.cy, s.s, 128, 128) for s in layout]
        expected = np.empty((128, 128, 3), np.uint8)
        expected[:] = background
        visible = []
        for k, s in enumerate(layout):
            expected[full[k]] = s.colour
            later = np.zeros((128, 128), bool)
            for m in full[k + 1 :]:
                later |= m
            visible.append(full[k] & ~later)
        assert np.array_equal(image, expected)
        kept = [v for v in visible if v.sum() >= 20]
        assert np.array_equal(t["masks"], np.array(kept).reshape(-1, 128, 128))
        labels = [s.label for s, v in zip(layout, visible, strict=True) if v.sum() >= 20]
        assert t["labels"].tolist() == labels


def test_an_object_with_fewer_than_20_visible_pixels_is_dropped():
    under = Shape(2, 20.0, 20.0, 8, (255, 0, 0))  # a 16 x 16 square
    big = Shape(2, 20.0, 17.0, 10, (0, 255, 0))  # covers all of it but the bottom row (16 px)
    image, t = render((0, 0, 0), [under, big], 64)
    assert t["labels"].tolist() == [2] and t["masks"][0].sum() == 400
    assert np.count_nonzero((image == (255, 0, 0)).all(-1)) == 16  # its pixels stay painted
    _, t = render((0, 0, 0), [under, big._replace(cy=16.0)], 64)  # now 32 visible: kept
    assert t["labels"].tolist() == [2, 2] and t["masks"][0].sum() == 32


def test_box_is_the_tight_box_of_the_visible_mask(samples):
    for _, t in samples:
        for box, m in zip(t["boxes"], t["masks"], strict=True):
            rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
            assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


def test_tight_box_covers_the_pixels_edges_included():
    m = np.zeros((2, 20, 20), bool)
    m[0, 5:7, 3:11] = True  # columns 3..10, rows 5..6
    assert masks_to_tight_boxes(m).tolist() == [[3, 5, 11, 7], [0, 0, 0, 0]]
    assert masks_to_tight_boxes(np.zeros((0, 4, 4), bool)).shape == (0, 4)


def test_square_and_disc_follow_the_pixel_centre_rule():
    square = shape_mask(2, cx=10.0, cy=10.0, s=3, height=20, width=20)
    assert square.sum() == 36 and square[7:13, 7:13].all()  # centres 7.5..12.5 within [7, 13]
    shifted = shape_mask(2, cx=10.5, cy=10.5, s=3, height=20, width=20)  # edges on centres: closed
    assert shifted.sum() == 49
    disc = shape_mask(1, 10.0, 10.0, 8, 20, 20)
    yy, xx = np.mgrid[:20, :20] + 0.5
    assert np.array_equal(disc, np.hypot(xx - 10, yy - 10) <= 8)
    assert abs(disc.sum() - np.pi * 64) < 0.05 * np.pi * 64


@pytest.mark.parametrize(("cx", "cy", "s"), [(50.3, 49.7, 20), (17.1, 22.8, 9), (64.37, 70.21, 24)])
def test_triangle_is_upright_equilateral_with_circumradius_s(cx, cy, s):
    # a reference we did not write: matplotlib's point-in-polygon on the three vertices
    h = np.sqrt(3) / 2 * s
    vertices = [(cx, cy - s), (cx + h, cy + s / 2), (cx - h, cy + s / 2)]
    yy, xx = np.mgrid[:128, :128] + 0.5
    inside = Path(vertices).contains_points(np.stack([xx.ravel(), yy.ravel()], 1))
    got = shape_mask(3, cx, cy, s, 128, 128)
    assert np.array_equal(got, inside.reshape(128, 128))
    rows = np.flatnonzero(got.any(1))
    assert got[rows[-1]].sum() > got[rows[0]].sum()  # wide at the bottom: upright


def test_a_seed_determines_the_sample():
    a, ta = make_shapes_sample(1234)
    b, tb = make_shapes_sample(1234)
    assert np.array_equal(a, b) and all(np.array_equal(ta[k], tb[k]) for k in ta)
    c, _ = make_shapes_sample(1235)
    assert not np.array_equal(a, c)


def test_train_and_eval_streams_never_share_a_seed():
    train, evaluation = ShapesDataset("train"), ShapesDataset("eval")
    assert len(evaluation) == 200 and len(train) == 10**6
    assert train.seeds == range(0, 10**6) and evaluation.seeds[0] == 10**9
    image, t = evaluation[-1]
    assert np.array_equal(image, make_shapes_sample(10**9 + 199)[0])
    assert np.array_equal(train[5][0], make_shapes_sample(5)[0])
    with pytest.raises(ValueError, match="split"):
        ShapesDataset("test")
    with pytest.raises(ValueError, match="size"):
        ShapesDataset("train", size=10**6 + 1)
    with pytest.raises(IndexError):
        evaluation[200]
    with pytest.raises(TypeError):
        evaluation[1.0]


def test_larger_images_with_more_objects_for_speed_comparisons():
    image, t = make_shapes_sample(7, image_size=512, max_objects=12)
    assert image.shape == (512, 512, 3) and t["masks"].shape[1:] == (512, 512)
    assert 1 <= len(t["labels"]) <= 12
    big = ShapesDataset("eval", size=20, image_size=512, max_objects=12)
    counts = [len(big[i][1]["labels"]) for i in range(20)]
    assert max(counts) > 4 and big[0][0].shape == (512, 512, 3)
    assert np.array_equal(big[3][0], make_shapes_sample(10**9 + 3, 512, 12)[0])


def test_impossible_settings_raise_value_error():
    with pytest.raises(ValueError, match="image_size"):
        make_shapes_sample(0, image_size=40)
    with pytest.raises(ValueError, match="max_objects"):
        ShapesSpec(max_objects=0)
    with pytest.raises(ValueError, match="seed"):
        make_shapes_sample(-1)
    with pytest.raises(ValueError, match="label"):
        shape_mask(4, 5.0, 5.0, 3, 10, 10)


def test_the_sample_figure_draws_boxes_with_class_names(samples):
    fig = plot_samples(samples[:3], titles=["a", "b", "c"])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(texts) == sum(len(t["labels"]) for _, t in samples[:3])
    assert set(texts) <= set(CLASS_NAMES[1:]) and texts
    assert isinstance(draw_sample(*samples[0]), Figure)


def test_detections_show_scores_masks_and_respect_the_threshold(samples):
    image, t = samples[0]
    det = dict(t, scores=np.linspace(0.9, 0.2, len(t["labels"])), masks=t["masks"].astype(float))
    fig = Figure()
    ax = fig.add_subplot()
    assert draw_detections(image, det, ax=ax, score_threshold=0.5, ground_truth=t) is fig
    texts = [x.get_text() for x in ax.texts]
    assert len(texts) == int((det["scores"] >= 0.5).sum()) and all(" 0." in x for x in texts)
    shown = ax.images[0].get_array()
    first = t["masks"][0]
    assert not np.allclose(shown[first], image[first] / 255)  # the first mask is tinted
    assert np.allclose(shown[~t["masks"].any(0)], image[~t["masks"].any(0)] / 255)
