"""Bilinear interpolation against SciPy, closed forms, the loop reference and numerical gradients."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from rcnn_from_scratch.bilinear import (
    bilinear_interpolate,
    bilinear_interpolate_backward,
    bilinear_interpolate_forward,
    bilinear_interpolate_reference,
    interpolate_bilinear,
    interpolate_bilinear_weights,
    linear_interpolation_weights,
)


@pytest.mark.parametrize("seed", range(3))
def test_interior_points_equal_scipy_map_coordinates_order_1(seed):
    rng = np.random.default_rng(seed)
    f = rng.random((3, 9, 13))
    y, x = rng.uniform(0, 8, 500), rng.uniform(0, 12, 500)
    ours = bilinear_interpolate(f, y, x)
    scipy = np.stack([ndimage.map_coordinates(c, [y, x], order=1) for c in f])
    np.testing.assert_allclose(ours, scipy, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.floats(-10, 10),
    st.floats(0, 6),
    st.floats(0, 8),
)
def test_linear_map_is_reproduced_exactly(a, b, c, y, x):
    yy, xx = np.mgrid[0:7, 0:9]
    f = a * xx + b * yy + c
    np.testing.assert_allclose(bilinear_interpolate(f, y, x), a * x + b * y + c, atol=1e-9)


def test_weights_are_the_opposite_areas():
    # the lecture's figure: the point (y, x) = (0.25, 0.5) between four pixels
    f = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = 0.75 * 0.5 * 1 + 0.75 * 0.5 * 2 + 0.25 * 0.5 * 3 + 0.25 * 0.5 * 4
    assert bilinear_interpolate(f, 0.25, 0.5) == pytest.approx(expected)


@pytest.mark.parametrize("size", [1, 2, 5])
def test_boundary_rule_at_and_around_each_edge(size):
    f = np.arange(1.0, size + 1.0)[:, None] * np.ones((1, 4))  # rows hold 1..size
    ys = np.array([-1.5, -1.0, -0.5, 0.0, size - 1, size - 0.5, size, size + 0.01, size + 1])
    got = bilinear_interpolate(f, ys, np.ones_like(ys))
    expected = [0, 1, 1, 1, size, size, size, 0, 0]  # beyond [-1, H]: 0; inside the band: clamped
    np.testing.assert_allclose(got, expected)
    got_x = bilinear_interpolate(f.T.copy(), np.ones_like(ys), ys)
    np.testing.assert_allclose(got_x, expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 7), st.floats(-2, 8)), min_size=1, max_size=20))
def test_equals_the_loop_reference_everywhere(points):
    f = np.random.default_rng(0).random((2, 5, 6))
    y, x = np.array(points).T
    ref = np.stack([bilinear_interpolate_reference(f, a, b) for a, b in points], axis=1)
    np.testing.assert_allclose(bilinear_interpolate(f, y, x), ref, atol=1e-12)


def test_backward_equals_numerical_gradient():
    rng = np.random.default_rng(1)
    f = rng.random((2, 4, 5))
    # keep points off grid lines (kinks) but include the border band and outside points
    y = rng.uniform(-1.4, 4.4, (6, 7)) + 0.013
    x = rng.uniform(-1.4, 5.4, (6, 7)) + 0.017
    out, cache = bilinear_interpolate_forward(f, y, x)
    dout = rng.normal(size=out.shape)
    grad = bilinear_interpolate_backward(dout, cache)
    eps = 1e-6
    num = np.zeros_like(f)
    for i in np.ndindex(f.shape):
        fp, fm = f.copy(), f.copy()
        fp[i] += eps
        fm[i] -= eps
        num[i] = np.sum(
            (bilinear_interpolate(fp, y, x) - bilinear_interpolate(fm, y, x)) * dout
        ) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


def test_backward_of_two_dimensional_map_keeps_its_shape_and_dtype():
    f = np.ones((3, 3), np.float32)
    out, cache = bilinear_interpolate_forward(f, [0.5, 5.0], [0.5, 0.5])
    g = bilinear_interpolate_backward(np.ones_like(out), cache)
    assert g.shape == (3, 3) and g.dtype == np.float32
    assert g.sum() == pytest.approx(1.0)  # the second point is outside and adds nothing


def test_axis_weights_sum_to_one_inside_and_zero_outside():
    w = linear_interpolation_weights(np.array([-2.0, -0.5, 0.3, 3.9, 4.5]), 4)
    np.testing.assert_allclose(w.w_lo + w.w_hi, [0, 1, 1, 1, 0])


@pytest.mark.parametrize(
    "feature, message",
    [
        (np.zeros((0, 3)), "non-empty"),
        (np.zeros(3), r"\(C, H, W\)"),
        (np.zeros((2, 2), int), "float"),
    ],
)
def test_bad_maps_give_clear_errors(feature, message):
    with pytest.raises(ValueError, match=message):
        bilinear_interpolate(feature, 0.0, 0.0)


def test_nan_coordinates_give_a_clear_error():
    with pytest.raises(ValueError, match="finite"):
        bilinear_interpolate(np.zeros((2, 2)), np.nan, 0.0)


# --- resizing a whole map: torch's F.interpolate(mode="bilinear", align_corners=False) ---------------

RESIZE_CASES = [  # (H, W) -> (Ho, Wo), channels: REALSCALE's checked list
    ((5, 7), (8, 11), 3),
    ((480, 640), (800, 1066), 3),
    ((427, 640), (800, 1199), 3),
    ((2000, 3000), (888, 1333), 1),
    ((30, 30), (11, 47), 2),
    ((90, 120), (800, 1066), 1),
    ((90, 120), (33, 45), 2),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resize_of_a_constant_map_is_that_constant(dtype):
    x = np.full((2, 3, 13, 17), 0.3, dtype)
    out = interpolate_bilinear(x, (29, 8))
    assert out.shape == (2, 3, 29, 8) and out.dtype == dtype
    np.testing.assert_allclose(out, 0.3, rtol=2e-7)


def test_resize_to_the_same_size_is_the_identity():
    x = np.random.default_rng(0).random((3, 19, 23), dtype=np.float32)
    np.testing.assert_array_equal(interpolate_bilinear(x, (19, 23)), x)


@pytest.mark.parametrize(("n", "m"), [(7, 20), (30, 47), (10, 10), (40, 13)])
def test_resized_linear_ramp_is_linear_between_the_first_and_last_sample_centres(n, m):
    ramp = 0.25 * np.arange(n, dtype=np.float64) + 1.0  # value at index k: 0.25 k + 1
    x = np.broadcast_to(ramp, (1, 4, n)).copy()
    out = interpolate_bilinear(x, (4, m))[0, 0]  # height 4 -> 4 is the identity
    src = (np.arange(m) + 0.5) * n / m - 0.5  # output pixel centres in input index frame
    expected = 0.25 * np.clip(src, 0, n - 1) + 1.0  # clamped to the edge samples outside
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_resize_weights_sum_to_one_and_stay_in_range():
    w = interpolate_bilinear_weights(427, 800)
    assert w.i0.min() == 0 and w.i1.max() == 426 and np.all(w.i1 - w.i0 <= 1)
    np.testing.assert_allclose(w.l0 + w.l1, 1.0, rtol=0, atol=1e-7)
    assert w.l0.dtype == np.float32 and np.all((w.l1 >= 0) & (w.l1 <= 1))


def test_shrinking_reads_only_two_samples_per_axis_no_antialias():
    x = np.zeros((1, 1, 100), np.float64)
    x[0, 0, ::2] = 1.0  # stripes: an area filter would give 0.5 everywhere
    out = interpolate_bilinear(x, (1, 10))[0, 0]
    src = (np.arange(10) + 0.5) * 10 - 0.5  # 4.5, 14.5, ...: halfway between a 0 and a 1
    np.testing.assert_allclose(out, 0.5 * np.ones_like(src))
    out = interpolate_bilinear(x, (1, 25))[0, 0]  # src = 4k + 1.5: between samples 1 (0) and 2 (1)
    np.testing.assert_allclose(out, 0.5)


def test_downscaling_a_large_map_needs_memory_of_the_order_of_the_output():
    import tracemalloc

    x = np.random.default_rng(0).random((1, 2400, 2400), dtype=np.float32)
    tracemalloc.start()
    out = interpolate_bilinear(x, (300, 300))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # a dense (300, 2400) resampling matrix or a float64 copy would cost far more than this
    assert peak < 6 * out.nbytes + 100_000, peak


@pytest.mark.parametrize(
    ("x", "size", "message"),
    [
        (np.zeros((4, 4)), (2, 2), "x must have shape"),
        (np.zeros((1, 4, 4), np.int64), (2, 2), "float32 or float64"),
        (np.zeros((1, 4, 4), np.float32), (0, 2), "size"),
    ],
)
def test_bad_resize_inputs_give_clear_errors(x, size, message):
    with pytest.raises(ValueError, match=message):
        interpolate_bilinear(x, size)


@pytest.mark.parametrize(("in_hw", "out_hw", "channels"), RESIZE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resize_equals_torch_interpolate(in_hw, out_hw, channels, dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(sum(in_hw)).random((1, channels, *in_hw)).astype(dtype)
    theirs = torch.nn.functional.interpolate(
        torch.from_numpy(x), size=out_hw, mode="bilinear", align_corners=False
    ).numpy()
    ours = interpolate_bilinear(x, out_hw)
    assert ours.dtype == dtype
    if dtype == np.float32:  # about one ulp: torch's order of the final additions differs
        np.testing.assert_allclose(ours, theirs, rtol=3e-7, atol=1e-6)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("n", "m"), [(7, 11), (640, 1066), (640, 1199), (3000, 1333), (30, 47)])
def test_resize_weights_equal_torchs_exactly(n, m):
    """Torch's weights, read off by resizing the rows of an identity matrix (l * 1 + 0 is exact)."""
    torch = pytest.importorskip("torch")
    if n > 1000:  # columns of the identity that the output reads are enough
        w = interpolate_bilinear_weights(n, m)
        cols = np.unique(np.concatenate([w.i0, w.i1]))
    else:
        cols = np.arange(n)
    eye = np.zeros((len(cols), 1, 1, n), np.float32)
    eye[np.arange(len(cols)), 0, 0, cols] = 1.0
    theirs = torch.nn.functional.interpolate(
        torch.from_numpy(eye), size=(1, m), mode="bilinear", align_corners=False
    ).numpy()[:, 0, 0, :]  # (columns, m): the weight of input column k in output d
    w = interpolate_bilinear_weights(n, m)
    ours = np.zeros((n, m), np.float32)
    np.add.at(ours, (w.i0, np.arange(m)), w.l0)
    np.add.at(ours, (w.i1, np.arange(m)), w.l1)
    np.testing.assert_array_equal(ours[cols], theirs)
