"""roi_pool against torchvision's documented check, the loop reference, gradients and torchvision."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcnn_from_scratch import RoIPool, roi_pool
from rcnn_from_scratch.roi.roi_pool import roi_pool_backward, roi_pool_forward, roi_pool_reference


def random_rois(rng, n, num_images=2, extent=120.0):
    xy = rng.uniform(-20, extent, (n, 2))
    return np.hstack([rng.integers(0, num_images, (n, 1)), xy, xy + rng.uniform(0, 60, (n, 2))])


def test_the_reference_check_of_a_4x4_arange_map():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    out = roi_pool(x, np.array([[0, 0, 0, 20, 20], [0, 0, 10, 30, 30]], np.float32), 2, 0.1)
    np.testing.assert_array_equal(out[:, 0], [[[5, 6], [9, 10]], [[9, 11], [13, 15]]])


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from([1, 2, (3, 4), 7]),
    st.sampled_from([1.0, 0.5, 0.125]),
)
def test_equals_the_loop_reference_exactly(seed, output_size, scale):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 11, 13))
    rois = random_rois(rng, 12)
    np.testing.assert_array_equal(
        roi_pool(x, rois, output_size, scale), roi_pool_reference(x, rois, output_size, scale)
    )


def test_backward_routes_each_gradient_to_its_maximum_as_a_numerical_gradient_does():
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9).astype(np.float64)  # no ties
    rois = random_rois(rng, 6, extent=60) / 8 * np.array([1, 1, 1, 1, 1])
    rois[:, 0] = rng.integers(0, 2, 6)
    out, cache = roi_pool_forward(x, rois, 3, 0.9)
    dout = rng.standard_normal(out.shape)
    grad = roi_pool_backward(dout, cache)
    eps = 1e-3  # max is piecewise linear: a step smaller than the gaps between values is exact
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = np.sum((roi_pool(xp, rois, 3, 0.9) - roi_pool(xm, rois, 3, 0.9)) * dout) / (
            2 * eps
        )
    np.testing.assert_allclose(grad, num, atol=1e-8)


def test_a_constant_map_gives_a_constant_output():
    out = roi_pool(
        np.full((1, 2, 8, 8), 3.0), random_rois(np.random.default_rng(1), 5, 1, 40), 4, 0.2
    )
    assert np.all((out == 3.0) | (out == 0.0)) and np.any(out == 3.0)


def test_degenerate_inputs():
    x = np.ones((1, 2, 6, 6), np.float32)
    assert roi_pool(x, np.zeros((0, 5), np.float32), 3).shape == (0, 2, 3, 3)
    outside = roi_pool(x, np.array([[0, 100, 100, 120, 120]], np.float32), 2)
    assert np.all(outside == 0)  # every bin is empty
    zero = roi_pool(x, np.array([[0, 2, 2, 2, 2]], np.float32), 2)
    assert np.all(zero == 1)  # a zero-size box still covers its one cell
    with pytest.raises(ValueError, match="batch index 1"):
        roi_pool(x, np.array([[1, 0, 0, 2, 2]], np.float32), 2)
    with pytest.raises(ValueError, match="x1 <= x2"):
        roi_pool(x, np.array([[0, 3, 0, 2, 2]], np.float32), 2)


def test_a_list_of_per_image_boxes_equals_the_k5_form():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    a, b = np.array([[0, 0, 5, 5]], np.float32), np.array([[1, 1, 8, 9], [2, 2, 4, 4]], np.float32)
    k5 = np.array([[0, 0, 0, 5, 5], [1, 1, 1, 8, 9], [1, 2, 2, 4, 4]], np.float32)
    np.testing.assert_array_equal(roi_pool(x, [a, b], 2), roi_pool(x, k5, 2))


def test_layer_wrapper_follows_the_module_contract():
    layer = RoIPool(2, 0.5)
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 6))
    out = layer(x, np.array([[0, 0, 0, 8, 8]], np.float32))
    assert layer.backward(np.ones_like(out)).shape == x.shape
    with pytest.raises(RuntimeError):
        layer.backward(np.ones_like(out))


@pytest.mark.parametrize("seed", range(3))
def test_matches_torchvision_forward_and_backward(seed):
    torch = pytest.importorskip("torch")
    tvops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(seed)
    x = rng.permutation(2 * 4 * 12 * 12).reshape(2, 4, 12, 12).astype(np.float64)
    rois = random_rois(rng, 20, extent=90)
    out, cache = roi_pool_forward(x, rois, (3, 2), 0.125)
    dout = rng.standard_normal(out.shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = tvops.roi_pool(tx, torch.tensor(rois), (3, 2), 0.125)
    tout.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_allclose(roi_pool_backward(dout, cache), tx.grad.numpy(), atol=1e-12)


def test_an_output_size_that_would_exhaust_memory_is_refused_before_allocating():
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match="output and argmax .* would need"):
        roi_pool_forward(x, np.array([[0, 0, 0, 4, 4.0]]), 10**5)
    with pytest.raises(ValueError, match="output .* would need"):  # values only: no argmax
        roi_pool(x, np.array([[0, 0, 0, 4, 4.0]]), 10**5)


def test_a_roi_far_larger_than_the_map_is_pooled_over_the_map():
    x = np.arange(64, dtype=np.float64).reshape(1, 1, 8, 8)
    out = roi_pool(x, np.array([[0, 0, 0, 1e9, 1e9]]), 1)
    assert out.item() == 63  # the one bin is clipped to the whole map


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), 0.0, -2.0, None])
def test_a_nan_infinite_or_non_positive_spatial_scale_is_refused(scale):
    x = np.ones((1, 1, 8, 8), np.float32)
    for fn in (roi_pool, roi_pool_reference):
        with pytest.raises(ValueError, match="spatial_scale"):
            fn(x, np.array([[0, 0, 0, 4, 4.0]]), 2, spatial_scale=scale)
    with pytest.raises(ValueError, match="spatial_scale"):
        RoIPool(2, scale)


def first_maximum_reference(x, rois, output_size, scale):
    """Each bin's first maximum (row-major) as a flat index into ``x``, -1 if empty: loops."""
    N, C, H, W = x.shape
    ph_n, pw_n = output_size
    argmax = np.full((len(rois), C, ph_n, pw_n), -1)
    for k, (n, *box) in enumerate(rois):
        x1, y1, x2, y2 = np.sign(box) * np.floor(np.abs(np.array(box) * scale) + 0.5)
        roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        for ph, pw in np.ndindex(ph_n, pw_n):
            hs = int(min(max(np.floor(ph * roi_h / ph_n) + y1, 0), H))
            he = int(min(max(np.ceil((ph + 1) * roi_h / ph_n) + y1, 0), H))
            ws = int(min(max(np.floor(pw * roi_w / pw_n) + x1, 0), W))
            we = int(min(max(np.ceil((pw + 1) * roi_w / pw_n) + x1, 0), W))
            for c in range(C):
                if he > hs and we > ws:
                    dy, dx = np.unravel_index(
                        np.argmax(x[int(n), c, hs:he, ws:we]), (he - hs, we - ws)
                    )
                    argmax[k, c, ph, pw] = np.ravel_multi_index(
                        (int(n), c, hs + dy, ws + dx), x.shape
                    )
    return argmax


@pytest.mark.parametrize("table_bytes", [1, 2**15, 2**20])  # 1, 2-6 or all sizes
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equals_the_reference_whether_the_window_table_holds_one_size_some_or_all(
    monkeypatch, table_bytes, dtype
):
    """Small maps put every window size in one table; large ones reuse a smaller table in turn.

    Both paths: ``roi_pool_forward`` (value and argmax, for a backward) and ``roi_pool`` (values
    only, so its table holds more sizes for the same bytes). Ties: the first maximum, row-major.
    """
    import rcnn_from_scratch.roi.roi_pool as module

    monkeypatch.setattr(module, "_TABLE_BYTES", table_bytes)
    rng = np.random.default_rng(table_bytes)
    x = np.round(rng.standard_normal((2, 3, 16, 14)), 1).astype(dtype)  # rounded: many ties
    rois = random_rois(rng, 200, extent=130)  # partly outside the map, both images, empty bins
    out, cache = roi_pool_forward(x, rois, (5, 4), 0.125)
    np.testing.assert_array_equal(out, roi_pool_reference(x, rois, (5, 4), 0.125))
    np.testing.assert_array_equal(roi_pool(x, rois, (5, 4), 0.125), out)
    assert out.dtype == roi_pool(x, rois, (5, 4), 0.125).dtype == dtype
    assert np.any(cache.argmax < 0) and np.all(out[cache.argmax < 0] == 0)
    np.testing.assert_array_equal(cache.argmax, first_maximum_reference(x, rois, (5, 4), 0.125))
    dout = rng.standard_normal(out.shape)  # the backward: each gradient to its argmax, empty: none
    used = cache.argmax >= 0
    expect = np.zeros(x.size)
    np.add.at(expect, cache.argmax[used], dout[used])
    np.testing.assert_allclose(roi_pool_backward(dout, cache), expect.reshape(x.shape), atol=1e-5)


@pytest.mark.parametrize("seed", range(2))
def test_ties_go_to_the_same_input_as_in_torchvision(seed):
    """A map of few distinct values: torchvision's backward shows which tied cell it chose."""
    torch = pytest.importorskip("torch")
    tvops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (2, 3, 20, 18)).astype(np.float64)
    rois = random_rois(rng, 40, extent=150)
    out, cache = roi_pool_forward(x, rois, 7, 0.125)
    dout = rng.standard_normal(out.shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = tvops.roi_pool(tx, torch.tensor(rois), 7, 0.125)
    tout.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_array_equal(roi_pool(x, rois, 7, 0.125), tout.detach().numpy())
    np.testing.assert_allclose(roi_pool_backward(dout, cache), tx.grad.numpy(), atol=1e-12)
