"""Convolutions: a case by hand, SciPy and the loop references, numerical gradients, PyTorch parity."""

import numpy as np
import pytest
from scipy.signal import correlate

from rcnn_from_scratch.nn import conv
from rcnn_from_scratch.nn.conv import (
    Conv2d,
    col2im,
    conv2d_backward,
    conv2d_forward,
    conv2d_reference,
    im2col,
)
from rcnn_from_scratch.nn.conv_transpose import (
    ConvTranspose2d,
    conv_transpose2d_forward,
    conv_transpose2d_reference,
)
from rcnn_from_scratch.nn.gradcheck import check_module_gradients

CASES = [  # (kernel, stride, padding)
    (3, 1, 1),
    (3, 2, 1),
    (1, 1, 0),
    ((3, 2), (2, 1), (0, 1)),
    (5, 3, 2),
]
TRANSPOSED_CASES = [
    (2, 2, 0),  # the mask head's: stamps tile the output (one transposing copy, no col2im)
    ((2, 3), (2, 3), 0),
    (1, 1, 0),
    (3, 2, 1),
    (4, 2, 1),
    (3, 1, 0),
    ((3, 2), (1, 2), (1, 0)),
]


@pytest.fixture(autouse=True, params=[0, conv.SMALL_MAP], ids=["per-image", "small-maps"])
def small_map_path(request, monkeypatch):
    """Every test runs twice: with each image its own GEMM (SMALL_MAP 0), and with the default,
    where the tests' small maps share GEMMs (several images' patches side by side)."""
    monkeypatch.setattr(conv, "SMALL_MAP", request.param)
    return request.param


def random_conv(rng, kernel, stride, padding, c_in=3, c_out=4):
    conv = Conv2d(c_in, c_out, kernel, stride, padding, rng=rng).to(np.float64)
    conv.bias.data[:] = rng.standard_normal(c_out)
    return conv


def test_box_filter_on_ones_counts_the_window_pixels_inside_the_image():
    # a 3 x 3 all-ones filter with zero padding 1 on a 4 x 4 image of ones: 4 in corners, 6 on edges
    out, _ = conv2d_forward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), None, 1, 1)
    expected = [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
    np.testing.assert_array_equal(out[0, 0], expected)


def test_conv_equals_scipy_correlate():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 10, 9)), rng.standard_normal((4, 3, 3, 3))
    out, _ = conv2d_forward(x, w, None, stride=2, padding=1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for n in range(2):
        for f in range(4):
            full = correlate(xp[n], w[f], mode="valid")[0]  # (Hp - 2, Wp - 2), summed over C
            np.testing.assert_allclose(out[n, f], full[::2, ::2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride, padding", CASES)
def test_conv_equals_the_loop_reference(kernel, stride, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 11, 9))
    conv = random_conv(rng, kernel, stride, padding)
    expected = conv2d_reference(x, conv.weight.data, conv.bias.data, stride, padding)
    np.testing.assert_allclose(conv(x), expected, rtol=1e-12, atol=1e-12)


def test_float32_conv_stays_float32_and_close_to_float64():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    conv = Conv2d(3, 8, 3, padding=1, rng=rng)
    out = conv(x)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    expected = conv2d_reference(
        x.astype(np.float64), conv.weight.data.astype(np.float64), None, 1, 1
    )
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert conv.backward(np.ones_like(out)).dtype == np.float32
    assert conv.weight.grad.dtype == np.float32


@pytest.mark.parametrize("kernel, stride, padding", CASES)
def test_conv_gradients_equal_numerical_gradients(kernel, stride, padding):
    rng = np.random.default_rng(3)
    conv = random_conv(rng, kernel, stride, padding, c_in=2, c_out=3)
    errors = check_module_gradients(conv, [rng.standard_normal((2, 2, 8, 7))], rng)
    assert max(errors.values()) < 1e-6, errors


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), c> == <x, col2im(c)>: col2im scatters exactly what im2col gathered
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 9, 8))
    cols = im2col(x, (3, 2), (2, 3))  # (3 * 3 * 2, 2 * Ho * Wo), Ho = 4, Wo = 3
    c = rng.standard_normal(cols.shape)
    patches = c.reshape(3, 3, 2, 2, 4, 3).transpose(3, 0, 1, 2, 4, 5)  # (N, C, kh, kw, Ho, Wo)
    assert np.sum(cols * c) == pytest.approx(np.sum(x * col2im(patches, x.shape, (2, 3))))
    # into a given buffer, whatever it held before
    dirty = np.full(x.shape, 7.0)
    np.testing.assert_array_equal(
        col2im(patches, x.shape, (2, 3), out=dirty), col2im(patches, x.shape, (2, 3))
    )


@pytest.mark.parametrize(
    "kernel, stride, padding",
    [((3, 2), 1, 1), ((3, 2), (2, 1), (1, 0)), (3, 1, 1), ((3, 5), 1, (0, 2)), (1, 1, 0)],
)
@pytest.mark.parametrize("budget", [1, 3000, 1 << 19])
def test_images_per_step_do_not_change_the_results(monkeypatch, budget, kernel, stride, padding):
    # forward and backward walk the batch a few images at a time (a stride-1 conv that keeps the
    # width reads its patches from the flat image, and stride 1 scatters the input gradient on a
    # flat image): one image per step, a few with a shorter last step, or all at once
    rng = np.random.default_rng(9)
    kh, kw = (kernel, kernel) if np.isscalar(kernel) else kernel
    x, w, b = rng.standard_normal((5, 3, 7, 6)), rng.standard_normal((4, 3, kh, kw)), np.ones(4)
    out, cache = conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out.shape)
    grads = conv2d_backward(dout, cache)
    monkeypatch.setattr(conv, "PATCH_BUFFER", budget)
    out2, cache2 = conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(out2, out, rtol=1e-12, atol=1e-12)
    for g, g2 in zip(grads, conv2d_backward(dout, cache2), strict=True):
        np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, conv2d_reference(x, w, b, stride, padding), rtol=1e-10)
    expected_dw = conv_weight_gradient_reference(x, dout, (kh, kw), stride, padding)
    np.testing.assert_allclose(grads[1], expected_dw, rtol=1e-10)


def conv_weight_gradient_reference(x, dout, kernel, stride, padding):
    """dW[f, c, i, j] = sum over n, y, x of dout[n, f, y, x] * xp[n, c, y sh + i, x sw + j]."""
    (kh, kw), (sh, sw) = kernel, (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = dout.shape[2:]
    dw = np.zeros((dout.shape[1], x.shape[1], kh, kw))
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw]
            dw[:, :, i, j] = np.einsum("nfyx,ncyx->fc", dout, window)
    return dw


def test_first_layer_without_input_gradient_gives_the_same_weight_gradient():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    out, cache = conv2d_forward(x, w, None, 1, 1)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    none, dw2, db2 = conv2d_backward(dout, cache, input_grad=False)
    assert dx.shape == x.shape and none is None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


@pytest.mark.parametrize("kernel, stride, padding", TRANSPOSED_CASES)
def test_transposed_conv_equals_the_loop_reference(kernel, stride, padding):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 5))
    layer = ConvTranspose2d(3, 2, kernel, stride, padding, rng=rng).to(np.float64)
    layer.bias.data[:] = rng.standard_normal(2)
    expected = conv_transpose2d_reference(x, layer.weight.data, layer.bias.data, stride, padding)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)
    plain = conv_transpose2d_reference(x, layer.weight.data, None, stride, padding)
    out, _ = conv_transpose2d_forward(x, layer.weight.data, None, stride, padding)
    np.testing.assert_allclose(out, plain, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride, padding", TRANSPOSED_CASES)
def test_transposed_conv_gradients_equal_numerical_gradients(kernel, stride, padding):
    rng = np.random.default_rng(7)
    layer = ConvTranspose2d(3, 2, kernel, stride, padding, rng=rng).to(np.float64)
    errors = check_module_gradients(layer, [rng.standard_normal((2, 3, 4, 5))], rng)
    assert max(errors.values()) < 1e-6, errors


def test_transposed_conv_is_the_adjoint_of_conv():
    # <conv(x), y> == <x, conv_transpose(y)> for the same weights: the defining property
    rng = np.random.default_rng(8)
    w = rng.standard_normal((4, 3, 3, 3))
    x = rng.standard_normal((2, 3, 9, 9))
    y = rng.standard_normal((2, 4, 5, 5))
    conv_x, _ = conv2d_forward(x, w, None, 2, 1)
    convt_y, _ = conv_transpose2d_forward(y, w, None, 2, 1)
    assert np.sum(conv_x * y) == pytest.approx(np.sum(x * convt_y), rel=1e-10)


def test_two_by_two_stride_two_transposed_conv_doubles_the_size_without_overlap():
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])  # (C=1, F=1, 2, 2)
    out, _ = conv_transpose2d_forward(x, w, None, 2, 0)
    np.testing.assert_array_equal(out[0, 0, :2, :2], 0 * w[0, 0])
    np.testing.assert_array_equal(out[0, 0, 2:, 2:], 3 * w[0, 0])
    assert ConvTranspose2d(8, 4, 2, 2)(np.zeros((1, 8, 14, 14), np.float32)).shape == (1, 4, 28, 28)


def test_empty_batch_gives_empty_outputs_and_gradients():
    conv = Conv2d(3, 4, 3, padding=1)
    out = conv(np.zeros((0, 3, 8, 8), np.float32))
    assert out.shape == (0, 4, 8, 8) and conv.backward(out).shape == (0, 3, 8, 8)
    assert not conv.weight.grad.any()


def test_the_same_seed_gives_the_same_weights():
    a, b, c = Conv2d(3, 4, 3, rng=1), Conv2d(3, 4, 3, rng=1), Conv2d(3, 4, 3, rng=2)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    assert a.weight.data.dtype == np.float32
    assert np.std(Conv2d(64, 64, 3, rng=0).weight.data) == pytest.approx(np.sqrt(2 / 576), rel=0.05)


def test_bad_inputs_are_errors_naming_the_argument():
    conv = Conv2d(3, 8, 3, padding=1)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        conv(np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="float32 or float64"):
        conv(np.zeros((1, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="smaller than"):
        Conv2d(3, 8, 5)(np.zeros((1, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="stride"):
        Conv2d(3, 8, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        ConvTranspose2d(3, 8, 2, 2, padding=-1)


def test_backward_without_forward_fails_loudly():
    conv = Conv2d(1, 1, 1)
    with pytest.raises(RuntimeError, match="without a forward"):
        conv.backward(np.zeros((1, 1, 2, 2)))


@pytest.mark.parametrize("kernel, stride, padding", CASES)
def test_conv_matches_pytorch_forward_and_backward(kernel, stride, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 11, 9))
    conv = random_conv(rng, kernel, stride, padding)
    out = conv(x)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(conv.weight.data, requires_grad=True)
    tb = torch.tensor(conv.bias.data, requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride, padding)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(conv.weight.grad, tw.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(conv.bias.grad, tb.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("kernel, stride, padding", TRANSPOSED_CASES)
def test_transposed_conv_matches_pytorch_forward_and_backward(kernel, stride, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 5, 4))
    layer = ConvTranspose2d(3, 2, kernel, stride, padding, rng=rng).to(np.float64)
    layer.bias.data[:] = rng.standard_normal(2)
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)
    tb = torch.tensor(layer.bias.data, requires_grad=True)
    tout = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride, padding)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(layer.weight.grad, tw.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(layer.bias.grad, tb.grad.numpy(), atol=1e-10)


def test_scratch_buffers_shared_by_layers_do_not_leak_between_calls():
    # convolutions of different shapes and dtypes share the module's scratch buffers; interleaved
    # forwards and backwards must give exactly what each gives alone
    rng = np.random.default_rng(12)
    xa, wa = rng.standard_normal((3, 2, 9, 9)), rng.standard_normal((4, 2, 3, 3))
    xb = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
    wb = rng.standard_normal((3, 5, 2, 2)).astype(np.float32)
    alone_a = conv2d_forward(xa, wa, np.ones(4), 1, 1)
    da = rng.standard_normal(alone_a[0].shape)
    grads_a = conv2d_backward(da, alone_a[1])
    alone_b = conv2d_forward(xb, wb, None, 2, 1)
    db = rng.standard_normal(alone_b[0].shape).astype(np.float32)
    grads_b = conv2d_backward(db, alone_b[1])

    out_a, cache_a = conv2d_forward(xa, wa, np.ones(4), 1, 1)
    out_b, cache_b = conv2d_forward(xb, wb, None, 2, 1)
    np.testing.assert_array_equal(out_a, alone_a[0])
    np.testing.assert_array_equal(out_b, alone_b[0])
    for g, g_alone in zip(conv2d_backward(db, cache_b), grads_b, strict=True):
        np.testing.assert_array_equal(g, g_alone)
    for g, g_alone in zip(conv2d_backward(da, cache_a), grads_a, strict=True):
        np.testing.assert_array_equal(g, g_alone)


@pytest.mark.parametrize(
    "kernel, stride, padding",
    [(1, 1, 0), (1, 2, 0), (1, 1, 1), (3, 1, 1), (3, 2, 1), (3, 1, 0), (3, 2, 0), (7, 2, 3),
     (7, 1, 3), (3, 1, 3), ((3, 5), 1, (1, 2)), ((1, 3), (2, 1), (3, 0))],
)  # fmt: skip
@pytest.mark.parametrize("block", [1, 150, 1000])
def test_row_blocks_equal_the_loop_reference_and_the_unblocked_path(
    monkeypatch, block, kernel, stride, padding
):
    # a tiny PATCH_BLOCK makes every image go in blocks of output rows (1 row per block at 1,
    # a few rows and a shorter last block at 150 and 1000), through all three im2col paths;
    # the first and last blocks hold the top and bottom padding
    rng = np.random.default_rng(13)
    kh, kw = (kernel, kernel) if np.isscalar(kernel) else kernel
    x, w, b = rng.standard_normal((2, 3, 11, 9)), rng.standard_normal((4, 3, kh, kw)), np.ones(4)
    whole, cache = conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(whole.shape)
    grads = conv2d_backward(dout, cache)
    monkeypatch.setattr(conv, "PATCH_BLOCK", block)
    for bias in (b, None):
        blocked, cache2 = conv2d_forward(x, w, bias, stride, padding)
        expected = conv2d_reference(x, w, bias, stride, padding)
        np.testing.assert_allclose(blocked, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocked + 1, whole, rtol=1e-12, atol=1e-12)
    for g, g2 in zip(grads, conv2d_backward(dout, cache2), strict=True):
        np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-12)
    expected_dw = conv_weight_gradient_reference(x, dout, (kh, kw), stride, padding)
    np.testing.assert_allclose(grads[1], expected_dw, rtol=1e-10)


def test_float32_stays_float32_in_row_blocks(monkeypatch):
    monkeypatch.setattr(conv, "PATCH_BLOCK", 500)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 4, 15, 13)).astype(np.float32)
    w, b = rng.standard_normal((6, 4, 3, 3)).astype(np.float32), np.ones(6, np.float32)
    for stride in (1, 2):
        out, _ = conv2d_forward(x, w, b, stride, 1)
        assert out.dtype == np.float32 and out.flags.c_contiguous
        expected = conv2d_reference(x.astype(np.float64), w.astype(np.float64), b, stride, 1)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_a_large_image_never_gets_a_whole_image_patch_matrix():
    # (1, 64, 400, 400) with a 3x3 kernel: its patch matrix would be 576 x 160000 floats (369 MB);
    # the convolution's scratch memory (besides the output) stays within two PATCH_BLOCKs
    import tracemalloc

    rng = np.random.default_rng(15)
    x = rng.standard_normal((1, 64, 400, 400), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
    budget = 2 * conv.PATCH_BLOCK * x.itemsize  # bytes: cols, the padded rows, slack
    assert 64 * 9 * 400 * 400 * x.itemsize > 2 * budget  # the whole matrix would not fit
    tracemalloc.start()
    try:
        out, _ = conv2d_forward(x, w, np.ones(64, np.float32), 1, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - out.nbytes < budget, (peak, out.nbytes, budget)
    kept = getattr(conv._workspaces, "arrays", {})
    assert all(a.size <= 2 * conv.PATCH_BLOCK for a in kept.values())
    # spot-check a few output pixels against the definition (the corner has padding)
    for y, x_ in [(0, 0), (199, 251), (399, 399)]:
        patch = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))[:, y : y + 3, x_ : x_ + 3]
        expected = np.tensordot(w.astype(np.float64), patch, axes=3) + 1
        np.testing.assert_allclose(out[0, :, y, x_], expected, rtol=1e-4, atol=1e-3)


def test_one_by_one_stride_one_conv_is_a_plain_gemm_without_im2col(monkeypatch):
    def no_im2col(*args, **kwargs):
        raise AssertionError("a 1x1 stride-1 convolution must not build patches")

    rng = np.random.default_rng(16)
    x, w, b = rng.standard_normal((2, 5, 6, 7)), rng.standard_normal((3, 5, 1, 1)), np.ones(3)
    expected = np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x) + 1
    monkeypatch.setattr(conv, "_patch_pieces", no_im2col)
    out, _ = conv2d_forward(x, w, b)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert out.flags.c_contiguous


def test_one_by_one_stride_two_conv_is_the_gemm_of_the_subsampled_input():
    rng = np.random.default_rng(17)
    x, w = rng.standard_normal((2, 5, 7, 8)), rng.standard_normal((3, 5, 1, 1))
    out, _ = conv2d_forward(x, w, None, stride=2)
    expected = np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x[:, :, ::2, ::2])
    np.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.parametrize("block", [1, 200, 5000, 1 << 23])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (3, 2, 1), (1, 2, 0), (2, 1, 0)])
def test_many_small_maps_share_gemms_and_equal_the_reference(
    monkeypatch, block, kernel, stride, padding
):
    # a batch of RoIs (as the mask head's): one image per GEMM at block 1, a few and a shorter
    # last group at 200 and 5000, all 13 at once at the default
    rng = np.random.default_rng(21)
    x, w, b = (
        rng.standard_normal((13, 5, 6, 7)),
        rng.standard_normal((3, 5, kernel, kernel)),
        np.arange(3.0),
    )
    monkeypatch.setattr(conv, "SMALL_MAP", 1024)
    monkeypatch.setattr(conv, "PATCH_BLOCK", block)
    for bias in (b, None):
        out, _ = conv2d_forward(x, w, bias, stride, padding)
        assert out.flags.c_contiguous and out.shape[0] == 13
        np.testing.assert_allclose(
            out, conv2d_reference(x, w, bias, stride, padding), rtol=1e-12, atol=1e-12
        )
    x32 = x.astype(np.float32)
    assert (
        conv2d_forward(x32, w.astype(np.float32), b.astype(np.float32), stride, padding)[0].dtype
        == np.float32
    )


@pytest.mark.parametrize(
    "kernel, stride, padding",
    [((2, 3), (3, 2), (1, 0)), (1, 2, 1), (7, 2, 3), (3, (2, 3), 1), (4, 4, 0)],
)
def test_strided_conv_with_kernels_below_and_above_the_stride_equals_the_reference(
    kernel, stride, padding
):
    # kernels smaller and larger than the stride (some input pixels in no patch, some in
    # several), padding with and without: forward and weight gradient
    rng = np.random.default_rng(19)
    kh, kw = (kernel, kernel) if np.isscalar(kernel) else kernel
    x, w, b = rng.standard_normal((2, 3, 13, 11)), rng.standard_normal((4, 3, kh, kw)), np.ones(4)
    out, cache = conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(out, conv2d_reference(x, w, b, stride, padding), rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    _, dw, _ = conv2d_backward(dout, cache)
    expected_dw = conv_weight_gradient_reference(x, dout, (kh, kw), stride, padding)
    np.testing.assert_allclose(dw, expected_dw, rtol=1e-10)


@pytest.mark.parametrize("block", [1, 1400, 1 << 23])
def test_tiled_transposed_conv_in_groups_of_images_equals_the_loop_reference(monkeypatch, block):
    # the 2x2 stride-2 deconvolution goes a few images at a time (a quarter of PATCH_BLOCK): one
    # at 1, two and a shorter last group at 1400 (2 * 2 * 2 * 4 * 5 = 160 elements per image),
    # all five at the default
    rng = np.random.default_rng(20)
    x, w, b = rng.standard_normal((5, 3, 4, 5)), rng.standard_normal((3, 2, 2, 2)), np.ones(2)
    monkeypatch.setattr(conv, "PATCH_BLOCK", block)
    for bias in (b, None):
        out, _ = conv_transpose2d_forward(x, w, bias, 2, 0)
        expected = conv_transpose2d_reference(x, w, bias, 2, 0)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    layer = ConvTranspose2d(3, 2, 2, 2, rng=rng).to(np.float64)
    errors = check_module_gradients(layer, [x], rng)
    assert max(errors.values()) < 1e-6, errors
