"""The convolution as BLAS matrix products over im2col buffers (the transposed convolution, built
on the same pieces, is ``conv_transpose.py``).

A convolution is a matrix product in disguise. Gather every ``C x kh x kw`` input patch into one
column of a matrix (*im2col*); then the whole layer is ``W @ cols`` with the filters ``W`` as rows.
The four passes pair up:

==========================  =====================================================
conv forward                ``W @ im2col(x)``
conv backward, weight       ``dout @ im2col(x).T``
conv backward, input        ``col2im(W.T @ dout)``  (scatter patches back and add)
transposed conv forward     ``col2im(W.T @ x)``     (= conv backward, input)
transposed conv backward    ``W @ im2col(dout)``    (= conv forward)
==========================  =====================================================

Layout: a column holds one patch, rows in ``(c, i, j)`` order, so ``weight.reshape(F, -1)``
multiplies it as it is (Caffe's im2col). The patches are a strided *view* of the padded input
(``sliding_window_view``, no copy); im2col is one copy of that view, col2im one strided add per
kernel offset (``kh * kw`` steps), never a loop over pixels.

How the convolution spends its time, and so how it is written:

* **A few images at a time.** The patch matrix is ``kh * kw`` times larger than the input. Built for
  the whole batch it falls out of the cache, and every fresh large array costs page faults on first
  touch. So ``conv2d_forward`` walks the batch in steps of about :data:`PATCH_BUFFER` elements,
  reusing one buffer; image ``n``'s GEMM writes straight into ``out[n]`` (already in
  ``(F, Ho, Wo)`` layout), and the bias rides along as one more input row that is always 1.
* **Several small maps per GEMM.** A batch of RoIs (the mask head's 100 maps of 14 x 14) would
  make 100 thin GEMMs; below :data:`SMALL_MAP` output pixels the patches of several images sit
  side by side in one buffer and one GEMM serves them all.
* **A block of rows at a time, at full size.** One 800 x 1088 image's patch matrix does not fit
  anywhere (2304 x 54400 floats, 500 MB, for the FPN's 3x3 convolution on its 200 x 272 x 256
  map). An image whose patch matrix exceeds :data:`PATCH_BLOCK` elements goes a block of output
  rows at a time, each block's GEMM writing straight into its rows of ``out``; so one
  convolution's scratch memory is bounded whatever the input size. A 1x1 convolution with
  stride 1 and no padding needs no patches at all: it is ``(F, C) @ (C, H W)`` on the input.
* **Patches rebuilt, not kept.** The cache holds the input itself; ``conv2d_backward`` copies the
  patches again, step by step, for the weight gradient. That is cheaper than keeping a batch-sized
  patch matrix alive from the forward, and inference never pays for it.
* **Flat images for stride 1.** Lay an image out row after row and a kernel offset ``(i, j)`` becomes
  one constant shift, the same for every output pixel. :func:`_im2col_steps` uses it to copy each
  patch row in one contiguous run (for convolutions that keep the width, as 3x3 with padding 1),
  :func:`_input_gradient_flat` to do col2im as ``kh * kw`` shifted adds of one long buffer; other
  convolutions use the strided view and :func:`col2im`. ``benchmarks/bench_nn.py`` measures the
  result against ``np.matmul`` of the same GEMM and against PyTorch.

Weights use PyTorch's layouts: ``(F, C, kh, kw)`` for ``Conv2d`` and ``(C, F, kh, kw)`` for
``ConvTranspose2d``. Every op is a pure ``*_forward -> (out, cache)`` / ``*_backward(dout, cache)``
pair; the layers wrap them as ``module.py`` describes. ``conv2d_reference`` is the slow loop
definition the tests compare against.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from .init import kaiming_normal
from .module import Module, Parameter

SMALL_MAP = 1024
"""Output pixels per image below which several images share one GEMM (RoI batches: the mask head
runs 100 RoIs of 14 x 14); the small shapes models' maps are 32 x 32 and larger."""

PATCH_BUFFER = 1 << 19
"""Elements of a step's patch buffer (2 MB in float32, about one core's L2 cache here); the
convolution handles as many images per step as fit, at least one."""

PATCH_BLOCK = 1 << 23
"""Most elements of one image's patch matrix (32 MB in float32). A larger image (the FPN's 3x3
convolution on a 200 x 272 x 256 map would need 2304 x 54400 = 125 M) is walked a block of output
rows at a time, so one convolution's scratch memory stays bounded whatever the input size.
Measured at ResNet-50-FPN shapes: on one thread blocks of 2 M to 32 M elements cost no speed
against the unblocked GEMM; on two threads sharing busy cores every GEMM call waits for both
threads, so fewer, larger blocks are faster, hence the top of that range."""

__all__ = [
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_reference",
    "Conv2d",
]


def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3, 2) -> (3, 2)``; a ``ValueError`` naming ``name`` below ``minimum``."""
    pair = (v, v) if np.isscalar(v) else tuple(v)
    if len(pair) != 2 or any(int(p) != p or p < minimum for p in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them; got {v!r}")
    return int(pair[0]), int(pair[1])


def _check_input(x, channels: int, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must have shape (N, {channels}, H, W); got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be float32 or float64; got dtype {x.dtype}")
    return x


def _pad(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """Zero padding of H and W (one allocation and one copy; faster than ``np.pad``)."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    return xp


def _patches(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Every patch of an (already padded) ``(N, C, Hp, Wp)`` array, as a strided view (no copy).

    Returns:
        ``(N, C, kh, kw, Ho, Wo)`` with ``[n, c, i, j, y, x] = xp[n, c, y sh + i, x sw + j]`` and
        ``Ho = (Hp - kh) // sh + 1`` (likewise ``Wo``).
    """
    (kh, kw), (sh, sw) = kernel, stride
    N, C, Hp, Wp = xp.shape
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))  # (N, C, Hp-kh+1, Wp-kw+1, kh, kw)
    windows = windows[:, :, : (Ho - 1) * sh + 1 : sh, : (Wo - 1) * sw + 1 : sw]
    return windows.transpose(0, 1, 4, 5, 2, 3)


def im2col(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Patches of an (already padded) ``(N, C, Hp, Wp)`` array as columns.

    Returns:
        ``(C * kh * kw, N * Ho * Wo)``, rows in ``(c, i, j)`` order, columns in ``(n, y, x)`` order,
        with ``Ho = (Hp - kh) // sh + 1`` (likewise ``Wo``).
    """
    p = _patches(xp, kernel, stride)  # (N, C, kh, kw, Ho, Wo)
    N, C, kh, kw, Ho, Wo = p.shape
    # (C, kh, kw, N, Ho, Wo): the copy moves runs of Wo neighbouring pixels
    return np.ascontiguousarray(p.transpose(1, 2, 3, 0, 4, 5)).reshape(C * kh * kw, N * Ho * Wo)


def col2im(patches: np.ndarray, padded_shape, stride, out=None) -> np.ndarray:
    """Adjoint of :func:`_patches`: add every patch back where it came from.

    Args:
        patches: ``(N, C, kh, kw, Ho, Wo)``, any strides.
        padded_shape: ``(N, C, Hp, Wp)`` of the array the patches were (or would be) taken from.
        out: optional ``(N, C, Hp, Wp)`` array to write into (overwritten, not added to).

    Returns:
        ``(N, C, Hp, Wp)``: pixel ``(y, x)`` holds the sum of every patch entry taken from it.
    """
    N, C, kh, kw, Ho, Wo = patches.shape
    sh, sw = stride
    if out is None:
        out = np.empty(padded_shape, patches.dtype)
    out[...] = 0
    for i in range(kh):  # kh * kw strided adds, each over the whole batch
        for j in range(kw):
            out[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw] += patches[
                :, :, i, j
            ]
    return out


def _to_rows(t: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(C, N * H * W)``: channels as rows, the layout the GEMMs use."""
    N, C, H, W = t.shape
    return np.ascontiguousarray(t.transpose(1, 0, 2, 3)).reshape(C, N * H * W)


def _from_rows(m: np.ndarray, N: int, H: int, W: int, bias=None) -> np.ndarray:
    """``(C, N * H * W)`` -> ``(N, C, H, W)``, contiguous, plus ``bias`` ``(C,)`` if given (added
    during the copy, which saves a pass over the output)."""
    out = np.empty((N, len(m), H, W), dtype=m.dtype)
    rows = m.reshape(len(m), N, H, W).transpose(1, 0, 2, 3)
    if bias is None:
        out[...] = rows
    else:
        np.add(rows, np.asarray(bias, m.dtype)[:, None, None], out=out)
    return out


# --- Conv2d -------------------------------------------------------------------------------------


class ConvCache(NamedTuple):
    """What the convolution's backward needs: the input itself (a reference, so it must not change
    in place before backward), not its patches: rebuilding them is cheaper than keeping them."""

    x: np.ndarray  # (N, C, H, W)
    weight: np.ndarray  # (F, C, kh, kw)
    stride: tuple[int, int]
    padding: tuple[int, int]


def _images_per_step(N: int, rows: int, cols: int) -> int:
    """How many images' ``rows x cols`` buffers fit in :data:`PATCH_BUFFER` (at least 1, at most N)."""
    return max(1, min(N, PATCH_BUFFER // (rows * cols)))


_workspaces = threading.local()


def _workspace(name: str, shape, dtype) -> np.ndarray:
    """A scratch array of undefined contents, kept between calls (per thread) for temporaries that
    never leave this module, as Caffe keeps one im2col buffer for all its layers.

    Why: NumPy gives a fresh large array new pages from the operating system, and touching them
    the first time costs page faults; a reused buffer is already mapped (and often still cached).
    Arrays larger than ``4 * PATCH_BUFFER`` or ``2 * PATCH_BLOCK`` elements are not kept.
    """
    size = int(np.prod(shape))
    key = (name, np.dtype(dtype).str)
    buffer = getattr(_workspaces, "arrays", {}).get(key)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype)
        if size <= max(4 * PATCH_BUFFER, 2 * PATCH_BLOCK):
            _workspaces.__dict__.setdefault("arrays", {})[key] = buffer
    return buffer[:size].reshape(shape)


class _Piece(NamedTuple):
    """One step of :func:`_patch_pieces`: images ``n .. n + m - 1``, output rows ``y0 .. y1 - 1``."""

    n: int
    m: int
    y0: int
    y1: int
    cols: np.ndarray  # (m, C kh kw [+ 1], (y1 - y0) Wo) the patches as columns [and a row of ones]


def _patch_pieces(x: np.ndarray, kernel, stride, padding, ones_row: bool = False):
    """Walk ``x`` in pieces whose patch matrices fit a bounded buffer; yield a :class:`_Piece` each.

    Small images go a few at a time (about :data:`PATCH_BUFFER` elements per step, whole images).
    An image whose patch matrix alone exceeds :data:`PATCH_BLOCK` elements goes alone, a block of
    output rows at a time, so memory stays bounded whatever the image size. A piece's input rows
    (with the zero rows of the padding above or below, where it touches them) pass through a
    reused buffer that also holds the left and right padding, and its patches are copied into
    ``cols`` in one of three ways:

    * a 1x1 kernel without padding: the (subsampled) input rows are the patches;
    * stride 1 and a convolution that keeps the width (``2 pw = kw - 1``, as 3x3 with padding 1):
      from the *flat* piece, padded above and below only. Patch entry ``(c, i, j)`` of output pixel
      ``(y, x)`` is flat element ``(y W + x) + (i W + j - pw)`` of channel ``c``, one constant shift
      per ``(c, i, j)``, so each row of ``cols`` is one long contiguous copy (not ``Ho`` copies of
      ``Wo``); then the ``|j - pw|`` columns that wrapped around a row's edge are zeroed: they are
      the left and right padding;
    * otherwise a copy of :func:`_patches` of the padded piece.

    With ``ones_row``, ``cols`` has one more row, all ones, that carries the bias through the GEMM.
    """
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    K = C * kh * kw
    if K * Ho * Wo <= PATCH_BLOCK:
        step, block = _images_per_step(N, K, Ho * Wo), Ho
    else:  # one image at a time, in blocks of output rows
        step, block = 1, max(1, min(Ho, PATCH_BLOCK // (K * Wo)))
    flat = stride == (1, 1) and 2 * pw == kw - 1
    direct = (kh, kw) == (1, 1) and padding == (0, 0)
    for n in range(0, N, step):
        m = min(step, N - n)
        for y0 in range(0, Ho, block):
            y1 = min(Ho, y0 + block)
            r = y1 - y0
            cols = _workspace("cols", (m, K + ones_row, r * Wo), x.dtype)
            if ones_row:
                cols[:, K] = 1
            patches = cols[:, :K].reshape(m, C, kh, kw, r, Wo)  # a view into cols
            # the piece's rows of the padded input: [a, b) in the input's own row numbers
            a, b = y0 * sh - ph, (y1 - 1) * sh + kh - ph
            lo = max(a, 0)
            hi = max(lo, min(b, H))  # lo == hi: a block inside the padding (padding >= kernel)
            if direct:
                patches[:, :, 0, 0] = x[n : n + m, :, lo:hi:sh, : (Wo - 1) * sw + 1 : sw]
            elif flat:
                _flat_patches(x[n : n + m, :, lo:hi], lo - a, b - a, pw, patches)
            else:
                rows = _workspace("padded", (m, C, b - a, W + 2 * pw), x.dtype)
                _fill_padded(rows, x[n : n + m, :, lo:hi], lo - a, pw)
                patches[...] = _patches(rows, kernel, stride)
            yield _Piece(n, m, y0, y1, cols)


def _fill_padded(rows: np.ndarray, inside: np.ndarray, top: int, pw: int) -> None:
    """Write ``inside`` ``(m, C, h, W)`` into ``rows`` ``(m, C, R, W + 2 pw)`` at row ``top``,
    column ``pw``; zero everything around it (the padding this piece touches)."""
    h, W = inside.shape[2:]
    rows[:, :, :top] = 0
    rows[:, :, top + h :] = 0
    if pw:
        rows[:, :, top : top + h, :pw] = 0
        rows[:, :, top : top + h, pw + W :] = 0
    rows[:, :, top : top + h, pw : pw + W] = inside


def _flat_patches(inside: np.ndarray, top: int, R: int, pw: int, patches: np.ndarray) -> None:
    """The flat-image im2col of :func:`_patch_pieces` for one piece.

    Args:
        inside: ``(m, C, h, W)``, the input rows of the piece; ``top`` zero rows go above them and
            ``R - top - h`` below (the padding), ``R = r + kh - 1`` rows in all.
        patches: ``(m, C, kh, kw, r, W)`` to fill (a view into ``cols``).
    """
    m, C, h, W = inside.shape
    kh, kw, r = patches.shape[2], patches.shape[3], patches.shape[4]
    L = R * W  # flat length of a channel
    flat = _workspace("padded", (m * C * L + 2 * pw,), inside.dtype)  # pw spare values each end
    flat[:pw], flat[len(flat) - pw :] = 0, 0
    _fill_padded(flat[pw : pw + m * C * L].reshape(m, C, R, W), inside, top, 0)
    e = flat.itemsize
    shifted = as_strided(flat, (m, C, kh, kw, r * W), (C * L * e, L * e, W * e, e, e))
    patches.reshape(m, C, kh, kw, r * W)[...] = shifted
    for j in range(kw):
        if j < pw:
            patches[:, :, :, j, :, : pw - j] = 0
        elif j > pw:
            patches[:, :, :, j, :, W - (j - pw) :] = 0


def conv2d_forward(x, weight, bias=None, stride=1, padding=0) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation, as in every deep-learning library): im2col and one GEMM
    per piece, a few images or a block of output rows of one image (see :func:`_patch_pieces`).

    A 1x1 convolution with stride 1 and no padding needs no im2col at all: it is one GEMM
    ``(F, C) @ (C, H W)`` per image on the input as it is.

    Args:
        x: ``(N, C, H, W)`` float32 or float64.
        weight: ``(F, C, kh, kw)`` filters; ``bias``: ``(F,)`` or ``None``.
        stride, padding: ints or ``(h, w)`` pairs; zero padding on both sides.

    Returns:
        ``(out, cache)``: ``out`` ``(N, F, Ho, Wo)``, contiguous, ``Ho = (H + 2 ph - kh) // sh + 1``
        (likewise ``Wo``), in the result dtype of ``x`` and ``weight``. Memory besides ``x`` and
        ``out``: buffers of at most about ``max(PATCH_BUFFER, PATCH_BLOCK)`` elements.

    Raises:
        ValueError: if ``x`` has not ``C`` channels or is smaller than the kernel after padding.
    """
    weight = np.asarray(weight)
    F, C, kh, kw = weight.shape
    x = _check_input(x, C)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    N, _, H, W = x.shape
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw) // stride[1] + 1
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"x of size {H}x{W} is smaller than the {kh}x{kw} kernel after padding")
    w = weight.reshape(F, C * kh * kw)
    out = np.empty((N, F, Ho, Wo), np.result_type(x, weight))
    if (kh, kw) == (1, 1) and stride == (1, 1) and padding == (0, 0):  # a plain GEMM
        np.matmul(w, x.reshape(N, C, H * W), out=out.reshape(N, F, H * W))
        if bias is not None:
            out += np.asarray(bias, out.dtype)[:, None, None]
        return out, ConvCache(x, weight, stride, padding)
    if N > 1 and Ho * Wo < SMALL_MAP:
        _small_maps_forward(x, w, bias, (kh, kw), stride, padding, out)
        return out, ConvCache(x, weight, stride, padding)
    if bias is not None:  # the bias rides along as one more column of w, against a row of ones
        w = np.concatenate([w, np.asarray(bias, w.dtype)[:, None]], axis=1)
    for n, m, y0, y1, cols in _patch_pieces(x, (kh, kw), stride, padding, bias is not None):
        target = out[n : n + m, :, y0:y1]  # (m, F, r, Wo): a view, rows Wo apart
        target.shape = (m, F, (y1 - y0) * Wo)  # (raises rather than copy, should it ever need to)
        np.matmul(w, cols, out=target)
    return out, ConvCache(x, weight, stride, padding)


def _small_maps_forward(x, w, bias, kernel, stride, padding, out) -> None:
    """Many small maps (a batch of RoIs): the patches of several images side by side, one GEMM.

    One image's GEMM ``(F, K) @ (K, Ho Wo)`` with ``Ho Wo = 196`` columns (a 14 x 14 RoI) runs at
    about half of BLAS's rate; ``m`` images' patches laid side by side make it ``(F, K) @ (K, m Ho
    Wo)``, one call at nearly the full rate, for one transposing copy of its result into ``out``
    (with the bias added on the way). ``m`` keeps the patch buffer within :data:`PATCH_BLOCK`.
    """
    N, C, H, W = x.shape
    (kh, kw), F = kernel, len(w)
    Ho, Wo = out.shape[2:]
    K = C * kh * kw
    step = max(1, min(N, PATCH_BLOCK // (K * Ho * Wo)))
    for n in range(0, N, step):
        m = min(step, N - n)
        patches = _patches(_pad(x[n : n + m], padding), kernel, stride)  # (m, C, kh, kw, Ho, Wo)
        cols = _workspace("cols", (C, kh, kw, m, Ho, Wo), x.dtype)
        cols[...] = patches.transpose(1, 2, 3, 0, 4, 5)
        result = _workspace("small_maps_out", (F, m, Ho, Wo), out.dtype)
        np.matmul(w, cols.reshape(K, m * Ho * Wo), out=result.reshape(F, -1))
        images = result.transpose(1, 0, 2, 3)  # (m, F, Ho, Wo)
        if bias is None:
            out[n : n + m] = images
        else:
            np.add(images, np.asarray(bias, out.dtype)[:, None, None], out=out[n : n + m])


def conv2d_backward(dout, cache: ConvCache, input_grad: bool = True):
    """Gradients of :func:`conv2d_forward`.

    Args:
        dout: ``(N, F, Ho, Wo)``, the gradient of the output.
        input_grad: compute ``dx``; a network's first layer needs none (the image is not learned).

    Returns:
        ``(dx (N, C, H, W) or None, dweight (F, C, kh, kw), dbias (F,))``.
    """
    x, weight, stride, padding = cache
    F, C, kh, kw = weight.shape
    N, K = len(x), C * kh * kw
    dout = np.asarray(dout)
    Ho, Wo = dout.shape[2:]
    dweight_t = np.zeros((K, F), np.result_type(dout, x))  # transposed: see the GEMM below
    for n, m, y0, y1, cols in _patch_pieces(x, (kh, kw), stride, padding):  # rebuilt, as forward
        d = dout[n : n + m, :, y0:y1].reshape(m, F, -1)  # (m, F, r Wo)
        # cols @ d.T rather than (d @ cols.T).T: the same numbers, faster in BLAS for a short F
        dweight_t += np.matmul(cols, d.transpose(0, 2, 1)).sum(0)
    dweight = dweight_t.T.reshape(F, C, kh, kw)
    dbias = dout.reshape(N, F, Ho * Wo).sum(axis=2).sum(axis=0)
    if not input_grad:
        return None, dweight, dbias
    if stride == (1, 1):
        dx = _input_gradient_flat(dout, weight, x.shape, padding)
    else:
        dx = _input_gradient(dout, weight, x.shape, stride, padding)
    return dx, dweight, dbias


def _input_gradient(dout, weight, x_shape, stride, padding) -> np.ndarray:
    """``dx = col2im(W.T @ dout)``, cropped to ``x_shape``, a few images at a time."""
    F, C, kh, kw = weight.shape
    N, _, H, W = x_shape
    (ph, pw), (Ho, Wo) = padding, dout.shape[2:]
    dx = np.empty(x_shape, np.result_type(dout, weight))
    step = _images_per_step(N, C * kh * kw, Ho * Wo)
    dcols = _workspace("dcols", (step, C * kh * kw, Ho * Wo), dx.dtype)
    image = _workspace("image", (step, C, H + 2 * ph, W + 2 * pw), dx.dtype)
    w_t = weight.reshape(F, -1).T
    for n in range(0, N, step):
        m = min(step, N - n)
        np.matmul(w_t, dout[n : n + m].reshape(m, F, -1), out=dcols[:m])
        col2im(dcols[:m].reshape(m, C, kh, kw, Ho, Wo), image[:m].shape, stride, image[:m])
        dx[n : n + m] = image[:m, :, ph : ph + H, pw : pw + W]
    return dx


def _input_gradient_flat(dout, weight, x_shape, padding) -> np.ndarray:
    """:func:`_input_gradient` for stride 1 (every convolution of our models), about 2x faster.

    It lays the padded images out *flat*: channel by channel, the ``m`` images of a step one after
    another, each ``Hp x Wp`` row after row. Output pixel ``(y, x)``'s patch entry ``(i, j)`` then
    sits at flat position ``(y Wp + x) + (i Wp + j)``: one shift per kernel offset, the same for
    every pixel, channel and image. If the gradient is laid out the same way (``dout`` at the
    top-left ``Ho x Wo`` of each ``Hp x Wp`` frame, zeros elsewhere), ``W.T @ dout`` gives one
    flat gradient image per kernel offset, and col2im is ``kh * kw`` shifted adds of the whole
    buffer: long contiguous runs instead of ``Wo``-long strided ones.
    """
    F, C, kh, kw = weight.shape
    N, _, H, W = x_shape
    (ph, pw), (Ho, Wo) = padding, dout.shape[2:]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    dx = np.empty(x_shape, np.result_type(dout, weight))
    step = _images_per_step(N, C * kh * kw, Hp * Wp)
    frames = _workspace("frames", (F, step, Hp, Wp), dx.dtype)  # dout, channel-major, padded
    frames[...] = 0
    w_t = weight.transpose(2, 3, 1, 0).reshape(kh * kw * C, F)  # rows in (i, j, c) order
    # W.T @ frames: one flat gradient image per kernel offset, then their shifted sum
    shifted = _workspace("dcols", (kh * kw, C * step * Hp * Wp), dx.dtype)
    flat = _workspace("image", (C * step * Hp * Wp + (kh - 1) * Wp + kw - 1,), dx.dtype)
    for n in range(0, N, step):
        m = min(step, N - n)
        frames[:, m:] = 0  # a last, shorter step leaves the spare frames empty
        frames[:, :m, :Ho, :Wo] = dout[n : n + m].transpose(1, 0, 2, 3)
        np.matmul(w_t, frames.reshape(F, -1), out=shifted.reshape(kh * kw * C, -1))
        flat[...] = 0
        for i in range(kh):
            for j in range(kw):
                start = i * Wp + j
                flat[start : start + shifted.shape[1]] += shifted[i * kw + j]
        image = flat[: shifted.shape[1]].reshape(C, step, Hp, Wp)
        dx[n : n + m] = image[:, :m, ph : ph + H, pw : pw + W].transpose(1, 0, 2, 3)
    return dx


def conv2d_reference(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """The definition, loop by loop over output pixels: the slow teaching path of the tests.

    ``out[n, f, y, x] = bias[f] + sum_{c, i, j} weight[f, c, i, j] * xp[n, c, y sh + i, x sw + j]``
    """
    F, C, kh, kw = weight.shape
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, _, Hp, Wp = xp.shape
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, weight))
    for n in range(N):
        for y in range(Ho):
            for x_ in range(Wo):
                patch = xp[n, :, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw]  # (C, kh, kw)
                out[n, :, y, x_] = np.tensordot(weight, patch, axes=3)
    return out + (0 if bias is None else bias[None, :, None, None])


# --- ConvTranspose2d ----------------------------------------------------------------------------


class Conv2d(Module):
    """``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None)``.

    Parameters ``weight`` ``(F, C, kh, kw)``, He-normal (fan-in ``C kh kw``), and ``bias`` ``(F,)``,
    zero; float32. ``rng`` (a ``np.random.Generator`` or a seed) makes the initialisation
    reproducible. With ``input_grad=False`` (a network's first layer, whose input is the image)
    ``backward`` skips ``dx`` and returns ``None``.
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None,
        input_grad=True,
    ):  # fmt: skip
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        self.weight = Parameter(kaiming_normal((out_channels, in_channels, kh, kw), rng))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        self.input_grad = bool(input_grad)

    def _forward(self, x):
        b = None if self.bias is None else self.bias.data
        return conv2d_forward(x, self.weight.data, b, self.stride, self.padding)

    def _backward(self, dout, cache):
        dx, dw, db = conv2d_backward(dout, cache, self.input_grad)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx
