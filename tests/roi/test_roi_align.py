"""roi_align: the hand-worked 5x5 case, the loop reference, closed forms, gradients, torchvision."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcnn_from_scratch import RoIAlign, roi_align
from rcnn_from_scratch.roi.roi_align import (
    roi_align_backward,
    roi_align_forward,
    roi_align_reference,
)


def random_rois(rng, n, num_images=2, extent=120.0):
    xy = rng.uniform(-20, extent, (n, 2))
    return np.hstack([rng.integers(0, num_images, (n, 1)), xy, xy + rng.uniform(0, 60, (n, 2))])


@pytest.mark.parametrize(
    "aligned, first_row", [(False, [7.5, 8, 8.5, 9]), (True, [4.5, 5, 5.5, 6])]
)
def test_a_5x5_arange_map_by_hand(aligned, first_row):
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    out = roi_align(x, np.array([[0, 1, 1, 3, 3]], np.float64), 4, aligned=aligned)
    np.testing.assert_allclose(out[0, 0, 0], first_row)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1), st.sampled_from([1, 2, (3, 4), 7]), st.sampled_from([1.0, 0.5, 0.125]),
    st.sampled_from([-1, 0, 1, 2]), st.booleans(), st.sampled_from([(9, 11), (40, 44)]),
)  # fmt: skip
def test_equals_the_loop_reference(seed, output_size, scale, sampling_ratio, aligned, hw):
    # (9, 11) takes the small-map path, (40, 44) the per-RoI crop path
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, *hw))
    rois = random_rois(rng, 8, extent=hw[1] / scale)
    args = (output_size, scale, sampling_ratio, aligned)
    np.testing.assert_allclose(
        roi_align(x, rois, *args), roi_align_reference(x, rois, *args), atol=1e-6
    )


@pytest.mark.parametrize("hw", [(7, 8), (36, 34)])
@pytest.mark.parametrize("aligned", [False, True])
def test_backward_equals_numerical_gradient(hw, aligned):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, *hw))
    rois = random_rois(rng, 5, extent=hw[0] * 4) + 0.013  # keep samples off grid lines
    rois[:, 0] = np.round(rois[:, 0] - 0.013)
    args = (3, 0.25, 2, aligned)
    out, cache = roi_align_forward(x, rois, *args)
    dout = rng.standard_normal(out.shape)
    grad = roi_align_backward(dout, cache)
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = np.sum((roi_align(xp, rois, *args) - roi_align(xm, rois, *args)) * dout) / (
            2 * eps
        )
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_a_constant_map_gives_a_constant_output_inside():
    rng = np.random.default_rng(1)
    rois = np.hstack([np.zeros((6, 1)), rng.uniform(0, 10, (6, 2)), rng.uniform(12, 30, (6, 2))])
    out = roi_align(np.full((1, 2, 32, 32), 2.5), rois, 5, 1.0, 2, aligned=True)
    np.testing.assert_allclose(out, 2.5)


def test_a_linear_map_is_read_exactly_at_the_bin_centres():
    yy, xx = np.mgrid[0:20, 0:24]
    x = (0.5 * xx - 0.25 * yy + 3.0)[None, None].astype(np.float64)
    box = np.array([[0, 4.0, 3.0, 16.0, 15.0]])  # inside the map
    out = roi_align(x, box, 4, 1.0, 2, aligned=True)[0, 0]
    # bin centres in the index frame: start - 0.5 + (p + 0.5) * 3
    c = 4.0 - 0.5 + (np.arange(4) + 0.5) * 3
    r = 3.0 - 0.5 + (np.arange(4) + 0.5) * 3
    np.testing.assert_allclose(out, 0.5 * c[None, :] - 0.25 * r[:, None] + 3.0, atol=1e-12)


def test_aligned_integer_box_with_one_sample_per_bin_reads_pixel_centres():
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8))
    out = roi_align(x, np.array([[0, 2.0, 1.0, 6.0, 5.0]]), 4, 1.0, 1, aligned=True)
    np.testing.assert_allclose(out[0], x[0, :, 1:5, 2:6])


def test_degenerate_inputs():
    x = np.ones((1, 2, 6, 6), np.float32)
    assert roi_align(x, np.zeros((0, 5), np.float32), 3).shape == (0, 2, 3, 3)
    outside = roi_align(x, np.array([[0, 100, 100, 120, 120]], np.float32), 2)
    assert np.all(outside == 0)
    zero = roi_align(x, np.array([[0, 2, 2, 2, 2]], np.float32), 2, aligned=True)
    assert np.all(zero == 0)  # aligned: a zero-size box has no samples
    assert np.all(
        roi_align(x, np.array([[0, 2, 2, 2, 2]], np.float32), 2) == 1
    )  # not aligned: 1 cell
    with pytest.raises(ValueError, match="batch index 3"):
        roi_align(x, np.array([[3, 0, 0, 2, 2]], np.float32), 2)


def test_layer_wrapper_and_dtype():
    layer = RoIAlign(2, 0.5, 2, aligned=True)
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 6)).astype(np.float32)
    out = layer(x, [np.array([[0, 0, 8, 8]], np.float32)])
    assert out.dtype == np.float32 and layer.backward(np.ones_like(out)).shape == x.shape


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
@pytest.mark.parametrize("hw", [(10, 12), (40, 36)])
def test_matches_torchvision_forward_and_backward(aligned, sampling_ratio, hw):
    torch = pytest.importorskip("torch")
    tvops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, *hw))
    rois = random_rois(rng, 16, extent=hw[1] * 8)
    args = ((3, 4), 0.125, sampling_ratio, aligned)
    out, cache = roi_align_forward(x, rois, *args)
    dout = rng.standard_normal(out.shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = tvops.roi_align(tx, torch.tensor(rois), *args)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(roi_align_backward(dout, cache), tx.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize(
    "roi, output_size, sampling_ratio, message",
    [
        ([0, 0, 0, 1e9, 1e9], 7, -1, "sample points .* would need"),  # adaptive grid of 1e8 samples
        ([0, 0, 0, 1e300, 1e300], 7, -1, "sample points .* would need"),
        ([0, 0, 0, 4, 4], 7, 10**7, "sample points .* would need"),
        ([0, 0, 0, 4, 4], 10**5, 2, "output .* would need"),
    ],
)
def test_sizes_that_would_exhaust_memory_are_refused_before_allocating(
    roi, output_size, sampling_ratio, message
):
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=message):
        roi_align(x, np.array([roi], float), output_size, sampling_ratio=sampling_ratio)


def test_a_huge_roi_with_a_fixed_sampling_ratio_is_still_computed():
    x = np.ones((1, 1, 8, 8), np.float32)
    out = roi_align(x, np.array([[0, 0, 0, 1e9, 1e9]]), 2, sampling_ratio=2)
    assert out.shape == (1, 1, 2, 2) and np.all(np.isfinite(out))


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), 0.0, -1.0, "0.5"])
def test_a_nan_infinite_or_non_positive_spatial_scale_is_refused(scale):
    x = np.ones((1, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match="spatial_scale"):
        roi_align(x, np.array([[0, 0, 0, 4, 4.0]]), 2, spatial_scale=scale)
    with pytest.raises(ValueError, match="spatial_scale"):
        RoIAlign(2, scale)


@pytest.mark.parametrize("ratio", [2.5, "2", None])
def test_a_sampling_ratio_that_is_not_an_integer_is_refused(ratio):
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align(np.ones((1, 1, 8, 8)), np.array([[0, 0, 0, 4, 4.0]]), 2, sampling_ratio=ratio)
