"""The multi-scale variant of the shapes generator against shared/SHAPES.md, point by point."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from rcnn_from_scratch.boxes import box_iou
from rcnn_from_scratch.datasets.shapes import (
    MULTISCALE,
    Shape,
    ShapesDataset,
    ShapesSpec,
    draw_layout,
    make_shapes_sample,
    render,
    shape_mask,
)
from rcnn_from_scratch.viz.shapes import draw_sample, plot_samples

SMALL_AREA, LARGE_AREA = 32**2, 96**2  # COCO's area ranges


@pytest.fixture(scope="module")
def samples():
    return [make_shapes_sample(s, variant="multiscale") for s in range(40)]


@pytest.fixture(scope="module")
def layouts():
    return [draw_layout(s, MULTISCALE) for s in range(400)]


def test_images_are_256_square_rgb_uint8_with_one_background_colour(samples):
    for seed, (image, t) in enumerate(samples):
        assert image.shape == (256, 256, 3) and image.dtype == np.uint8
        n = len(t["labels"])
        assert t["boxes"].shape == (n, 4) and t["boxes"].dtype == np.float32
        assert t["masks"].shape == (n, 256, 256) and t["masks"].dtype == bool
        background, _ = draw_layout(seed, MULTISCALE)
        outside = ~t["masks"].any(0)
        shows_background = (image == background).all(-1)
        assert shows_background[outside].mean() > 0.99  # dropped specks aside, all background


def test_two_to_eight_objects_of_every_class(layouts):
    counts = [len(shapes) for _, shapes in layouts]
    # 2 to 8 drawn uniformly (mean 5); an object finding no place is dropped, none is ever added
    assert max(counts) == 8 and set(range(2, 9)) <= set(counts) and min(counts) >= 0
    assert 4.6 <= np.mean(counts) <= 5.2
    assert {s.label for _, layout in layouts for s in layout} == {1, 2, 3}


def test_sizes_are_log_uniform_integers_in_4_to_80(layouts):
    sizes = np.array([s.s for _, layout in layouts for s in layout])
    assert sizes.min() == 4 and sizes.max() == 80 and sizes.dtype.kind == "i"
    # log-uniform: each factor-of-sqrt(20) range of s (4..17.9, 17.9..80) holds about half
    lower = np.mean(sizes < np.sqrt(4 * 80))
    assert 0.45 <= lower <= 0.55
    # a uniform draw would put 17% below 17.9; the log-uniform's CDF log(s/4)/log(20) at s = 8
    assert abs(np.mean(sizes < 7.5) - np.log(7.5 / 4) / np.log(20)) < 0.04


def test_objects_are_painted_by_decreasing_size(layouts):
    for _, layout in layouts:
        sizes = [s.s for s in layout]
        assert sizes == sorted(sizes, reverse=True)


def test_painting_order_is_a_stable_sort_of_the_drawing_order():
    spec = ShapesSpec(**{**MULTISCALE.__dict__, "paint_order": "drawn"})
    for seed in range(50):
        _, drawn = draw_layout(seed, spec)  # the same draws, painted as drawn
        _, painted = draw_layout(seed, MULTISCALE)
        assert painted == sorted(drawn, key=lambda s: -s.s)


def test_every_shape_lies_inside_and_no_two_boxes_overlap_above_03(layouts):
    for _, layout in layouts:
        boxes = np.array([s.box for s in layout]).reshape(-1, 4)
        assert boxes.min(initial=0) >= 0 and boxes.max(initial=0) <= 256
        iou = box_iou(boxes, boxes)
        np.fill_diagonal(iou, 0)
        assert iou.max(initial=0) <= 0.3


def test_small_objects_are_on_top_and_masks_are_the_visible_pixels(samples):
    for seed, (image, t) in enumerate(samples):
        background, layout = draw_layout(seed, MULTISCALE)
        owner = np.full((256, 256), -1)
        for k, s in enumerate(layout):
            owner[shape_mask(s.label, s.cx, s.cy, s.s, 256, 256)] = k
        visible = [owner == k for k in range(len(layout))]
        kept = [v for v in visible if v.sum() >= 16]
        assert np.array_equal(t["masks"], np.array(kept).reshape(-1, 256, 256))
        for k, s in enumerate(layout):  # the image shows the colour of the pixel's owner
            assert (image[visible[k]] == s.colour).all()


def test_an_object_with_fewer_than_16_visible_pixels_is_dropped():
    under = Shape(2, 20.0, 20.0, 4, (255, 0, 0))  # an 8 x 8 square
    big = Shape(2, 20.0, 17.0, 6, (0, 255, 0))  # hides all of it but its bottom row (8 px)
    _, t = render((0, 0, 0), [under, big], 64, min_visible_pixels=MULTISCALE.min_visible_pixels)
    assert t["labels"].tolist() == [2]
    _, t = render((0, 0, 0), [under, big._replace(cy=16.0)], 64, min_visible_pixels=16)
    assert t["labels"].tolist() == [2, 2] and t["masks"][0].sum() == 16  # exactly 16: kept
    assert MULTISCALE.min_visible_pixels == 16


def test_boxes_are_the_tight_boxes_of_the_masks(samples):
    for _, t in samples:
        for box, m in zip(t["boxes"], t["masks"], strict=True):
            rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
            assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


def test_about_half_the_objects_are_small_and_some_are_large():
    areas = np.concatenate(
        [make_shapes_sample(s, variant="multiscale")[1]["masks"].sum((1, 2)) for s in range(300)]
    )
    assert len(areas) > 1000
    assert 0.4 <= np.mean(areas < SMALL_AREA) <= 0.65
    assert 0.03 <= np.mean(areas >= LARGE_AREA) <= 0.2
    # object sizes 8 to 160 pixels across: areas from a few dozen up to 160^2
    assert areas.min() >= 16 and areas.max() <= 160**2


def test_a_seed_determines_the_sample_and_the_variants_differ():
    a = make_shapes_sample(7, variant="multiscale")
    b = make_shapes_sample(7, variant="multiscale")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1]["masks"], b[1]["masks"])
    assert make_shapes_sample(7)[0].shape == (128, 128, 3)  # the default is unchanged
    c = make_shapes_sample(7, spec=MULTISCALE)
    assert np.array_equal(a[0], c[0])


def test_the_dataset_serves_the_variant_from_the_same_seed_streams():
    train = ShapesDataset("train", size=3, variant="multiscale")
    image, t = train[1]
    expected = make_shapes_sample(1, variant="multiscale")
    assert np.array_equal(image, expected[0]) and train.spec == MULTISCALE
    evaluation = ShapesDataset("eval", size=2, variant="multiscale")
    assert evaluation.seeds[0] == 10**9 and evaluation[0][0].shape == (256, 256, 3)


def test_unknown_variants_and_conflicting_specs_are_value_errors():
    with pytest.raises(ValueError, match="variant"):
        make_shapes_sample(0, variant="huge")
    with pytest.raises(ValueError, match="variant or spec"):
        make_shapes_sample(0, spec=ShapesSpec(), variant="multiscale")
    with pytest.raises(ValueError, match="size_distribution"):
        ShapesSpec(size_distribution="normal")
    with pytest.raises(ValueError, match="paint_order"):
        ShapesSpec(paint_order="random")
    with pytest.raises(ValueError, match="variant"):
        ShapesDataset("train", size=2, variant="huge")


def test_the_figure_helper_draws_the_variant(samples):
    fig = plot_samples(samples[:2])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(texts) == sum(len(t["labels"]) for _, t in samples[:2])
    assert isinstance(draw_sample(*samples[0]), Figure)
