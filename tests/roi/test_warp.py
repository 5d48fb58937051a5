"""Region warping (R-CNN appendix A): against scikit-image's warp, closed forms and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data, transform

from rcnn_from_scratch.roi.warp import WARP_METHODS, warp_region, warp_regions, warp_sample_grid


@pytest.fixture(scope="module")
def image():
    return data.astronaut()[::4, ::4]  # (128, 128, 3) uint8


def skimage_crop(image, box, size, padding, square):
    """The same crop by scikit-image: an affine map from output to input pixel indices."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if square:
        w = h = max(w, h)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    sx, sy = w / (size - 2 * padding), h / (size - 2 * padding)

    def inverse_map(cols_rows):  # output (col, row) -> input (col, row), both index frames
        col, row = cols_rows[:, 0], cols_rows[:, 1]
        return np.stack(
            [cx + (col + 0.5 - size / 2) * sx - 0.5, cy + (row + 0.5 - size / 2) * sy - 0.5], 1
        )

    return transform.warp(image / 255.0, inverse_map, output_shape=(size, size), order=1)


@pytest.mark.parametrize("method", ["warp", "square"])
@pytest.mark.parametrize("padding", [0, 8])
@pytest.mark.parametrize(
    "box", [(30.0, 40.0, 90.0, 70.0), (50.5, 20.25, 70.0, 100.0), (50.0, 50.0, 53.0, 90.0)]
)
def test_warp_agrees_with_skimage_transform_inside_the_image(image, method, padding, box):
    ours = warp_region(image, np.array(box), size=48, padding=padding, method=method)
    theirs = skimage_crop(image, box, 48, padding, square=method == "square")
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_outside_the_image_reads_the_image_mean(image):
    box = np.array([-64.0, -64.0, 64.0, 64.0])  # its top-left quarter lies outside
    out = warp_region(image, box, size=32, padding=0, method="warp")
    mean = (image / 255.0).reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(out[:16, :16], np.broadcast_to(mean, (16, 16, 3)), atol=1e-6)
    np.testing.assert_allclose(
        out[16:, 16:], skimage_crop(image, box, 32, 0, False)[16:, 16:], atol=1e-5
    )


def test_padding_is_measured_in_the_warped_frame(image):
    # a box whose edges lie on pixel edges: with padding p, output pixel p's centre sits half a
    # warped pixel inside the box, so the box interior starts exactly at index p
    box = np.array([40.0, 40.0, 80.0, 60.0])
    y, x, _, _ = warp_sample_grid(box[None], size=40, padding=10, method="warp")
    step_x, step_y = 40 / 20, 20 / 20
    np.testing.assert_allclose(x[0, 10], 40 + 0.5 * step_x)
    np.testing.assert_allclose(x[0, 29], 80 - 0.5 * step_x)
    np.testing.assert_allclose(y[0, 10], 40 + 0.5 * step_y)


def test_anisotropic_warp_of_a_constant_image_is_constant():
    img = np.full((20, 30, 3), 0.25, np.float32)
    out = warp_regions(img, [[2, 3, 9, 18], [-5, -5, 40, 40]], size=16, padding=4)
    np.testing.assert_allclose(out, 0.25, atol=1e-7)


def test_square_methods_keep_the_aspect_ratio_and_warp_changes_it():
    # an image holding one bright rectangle, 40 x 10: warped, it fills the inner frame; squared,
    # the 4:1 rectangle stays 4:1
    img = np.zeros((100, 100, 3), np.uint8)
    img[45:55, 30:70] = 255
    box = np.array([30.0, 45.0, 70.0, 55.0])

    def bright_extent(patch):
        rows, cols = np.nonzero(patch[..., 0] > 0.5)
        return cols.max() - cols.min() + 1, rows.max() - rows.min() + 1

    w, h = bright_extent(warp_region(img, box, size=64, padding=0, method="warp"))
    assert (w, h) == (64, 64)
    for method in ("square", "square_no_context"):
        w, h = bright_extent(warp_region(img, box, size=64, padding=0, method=method))
        assert (w, h) == (64, 16)


def test_square_without_context_blanks_everything_beyond_the_padded_box(image):
    box = np.array([40.0, 50.0, 100.0, 70.0])  # 60 x 20 -> a 60 x 60 square
    size, padding = 40, 5
    ctx = warp_region(image, box, size, padding, method="square")
    no_ctx = warp_region(image, box, size, padding, method="square_no_context")
    mean = (image / 255.0).reshape(-1, 3).mean(axis=0)
    # image pixels per warped pixel 60 / 30 = 2; the padded box spans rows 50 - 10 .. 70 + 10,
    # the square rows 30 .. 90 (padded: 0 .. 120 -> warped rows 0 .. 40)
    y, x, keep_y, keep_x = warp_sample_grid(box[None], size, padding, "square_no_context")
    assert keep_x.all()
    np.testing.assert_array_equal(keep_y[0], (y[0] >= 40) & (y[0] <= 80))
    np.testing.assert_allclose(
        no_ctx[~keep_y[0]], np.broadcast_to(mean, no_ctx[~keep_y[0]].shape), atol=1e-6
    )
    np.testing.assert_allclose(no_ctx[keep_y[0]], ctx[keep_y[0]])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(*[st.floats(-20, 150, allow_nan=False)] * 2, *[st.floats(0, 80)] * 2),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(WARP_METHODS),
)
def test_batched_warp_equals_one_box_at_a_time(image, rows, method):
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in rows])
    batch = warp_regions(image, boxes, size=24, padding=3, method=method)
    assert batch.shape == (len(boxes), 24, 24, 3) and batch.dtype == np.float32
    for k, box in enumerate(boxes):
        np.testing.assert_array_equal(batch[k], warp_region(image, box, 24, 3, method))
    assert batch.min() >= 0 and batch.max() <= 1


def test_no_boxes_give_an_empty_batch(image):
    assert warp_regions(image, np.zeros((0, 4)), size=8, padding=1).shape == (0, 8, 8, 3)


def test_bad_arguments_are_named(image):
    with pytest.raises(ValueError, match="method"):
        warp_region(image, np.array([0, 0, 4, 4.0]), method="crop")
    with pytest.raises(ValueError, match="padding"):
        warp_region(image, np.array([0, 0, 4, 4.0]), size=10, padding=5)
    with pytest.raises(ValueError, match="size"):
        warp_region(image, np.array([0, 0, 4, 4.0]), size=0)
    with pytest.raises(ValueError, match="box"):
        warp_region(image, np.array([0, 0, 4]))
    with pytest.raises(ValueError, match="boxes"):
        warp_regions(image, [[4, 0, 0, 4]])
