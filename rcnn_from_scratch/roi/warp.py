"""Region warping: R-CNN's way of turning a proposal of any shape into a fixed 227 x 227 CNN input.

R-CNN (Girshick et al. 2014, appendix A) compares three ways, each with a context padding ``p``
measured in the *warped* frame (the box fills the inner ``size - 2p`` pixels, ``p`` pixels of
surroundings on each side):

- ``"warp"``: anisotropic scaling of the padded box to ``size x size``; the aspect ratio changes.
  The paper's choice (with ``p = 16``; 3-5 mAP better than the square crops).
- ``"square"``: tightest square with context: the smallest square around the box, centred on it,
  scaled isotropically; what surrounds the box inside the square is real image content.
- ``"square_no_context"``: tightest square without context: the same square, but everything
  outside the (padded) box is replaced by the image mean, so the box keeps its aspect ratio and the
  net sees nothing of its surroundings beyond the ``p`` pixels of padding.

Parts of the warped frame that fall outside the image are filled with the image mean (the per-channel
mean of the whole image), as in R-CNN. Each output pixel's centre is mapped back into the image and
read with :func:`..bilinear.bilinear_interpolate`.
"""

from __future__ import annotations

import numpy as np

from ..bilinear import bilinear_interpolate
from ..conventions import as_boxes, as_rgb_float

__all__ = ["WARP_METHODS", "warp_regions", "warp_region", "warp_sample_grid"]

WARP_METHODS = ("warp", "square", "square_no_context")

_CHUNK = 32  # boxes per interpolation call: bounds the (K, S, S) coordinate arrays in memory


def _check(size, padding, method):
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int; got {size!r}")
    if not (0 <= padding and 2 * padding < size):
        raise ValueError(f"padding must satisfy 0 <= 2 * padding < size ({size}); got {padding}")
    if method not in WARP_METHODS:
        raise ValueError(f"method must be one of {WARP_METHODS}; got {method!r}")


def warp_sample_grid(boxes, size: int = 227, padding: float = 16, method: str = "warp"):
    """Where each output pixel of each warped box comes from, in continuous image coordinates.

    Args:
        boxes: ``(K, 4)`` ``x1, y1, x2, y2`` in the continuous pixel frame.
        size, padding, method: as in :func:`warp_regions`.

    Returns:
        ``(y, x, keep_y, keep_x)``: ``y`` ``(K, size)`` and ``x`` ``(K, size)`` the source position
        of output row ``i`` / column ``j``'s centre (the grid is separable); ``keep_y``, ``keep_x``
        ``(K, size)`` bool, False where ``"square_no_context"`` blanks the sample (outside the
        padded box), True everywhere for the other methods.
    """
    _check(size, padding, method)
    boxes = as_boxes(boxes, dtype=np.float64)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2  # (K, 2) x, y
    extent = boxes[:, 2:] - boxes[:, :2]  # (K, 2) w, h
    if method != "warp":
        extent = np.repeat(extent.max(axis=1, keepdims=True), 2, axis=1)  # the tightest square
    step = extent / (size - 2 * padding)  # (K, 2) image pixels per warped pixel
    offset = np.arange(size) + 0.5 - size / 2  # output pixel centres, relative to the centre
    x = centre[:, :1] + offset * step[:, :1]  # (K, S)
    y = centre[:, 1:] + offset * step[:, 1:]  # (K, S)
    if method == "square_no_context":
        pad = padding * step  # the p warped pixels of context, in image pixels
        keep_x = (x >= boxes[:, :1] - pad[:, :1]) & (x <= boxes[:, 2:3] + pad[:, :1])
        keep_y = (y >= boxes[:, 1:2] - pad[:, 1:]) & (y <= boxes[:, 3:] + pad[:, 1:])
    else:
        keep_x, keep_y = np.ones_like(x, bool), np.ones_like(y, bool)
    return y, x, keep_y, keep_x


def warp_regions(image, boxes, size: int = 227, padding: float = 16, method: str = "warp"):
    """Warp every box of one image to a ``size x size`` patch (R-CNN's CNN inputs).

    Args:
        image: ``H x W x 3`` uint8 or float in ``[0, 1]`` (grayscale, RGBA converted).
        boxes: ``(K, 4)`` ``x1, y1, x2, y2`` in the continuous pixel frame; may reach outside the
            image; a zero-width box repeats one column.
        size: output side (227 in R-CNN).
        padding: context ``p`` in output pixels on each side (16 in R-CNN), ``0 <= 2p < size``.
        method: ``"warp"``, ``"square"`` or ``"square_no_context"`` (module docstring).

    Returns:
        ``(K, size, size, 3)`` float32 in ``[0, 1]``; samples outside the image (a centre outside
        ``[0, W] x [0, H]``), and for ``"square_no_context"`` outside the padded box, hold the
        image's per-channel mean. ``K = 0`` gives ``(0, size, size, 3)``.
    """
    rgb = as_rgb_float(image)
    y, x, keep_y, keep_x = warp_sample_grid(boxes, size, padding, method)
    H, W = rgb.shape[:2]
    feature = np.ascontiguousarray(rgb.transpose(2, 0, 1))  # (3, H, W)
    mean = rgb.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    keep_y = keep_y & (y >= 0) & (y <= H)  # the explicit in-image mask (not the bilinear 0 rule)
    keep_x = keep_x & (x >= 0) & (x <= W)
    K = len(y)
    out = np.empty((K, size, size, 3), np.float32)
    for start in range(0, K, _CHUNK):  # whole-array work per chunk of boxes
        s = slice(start, start + _CHUNK)
        # continuous coordinate u sits at array index u - 0.5
        yy = np.broadcast_to(y[s, :, None] - 0.5, (len(y[s]), size, size))  # (k, S, S)
        xx = np.broadcast_to(x[s, None, :] - 0.5, (len(x[s]), size, size))  # (k, S, S)
        values = bilinear_interpolate(feature, yy, xx)  # (3, k, S, S)
        inside = keep_y[s, :, None] & keep_x[s, None, :]  # (k, S, S)
        out[s] = np.where(inside[..., None], values.transpose(1, 2, 3, 0), mean)
    return out


def warp_region(image, box, size: int = 227, padding: float = 16, method: str = "warp"):
    """Warp one box ``(4,)`` to a ``(size, size, 3)`` float32 patch; see :func:`warp_regions`."""
    box = np.asarray(box)
    if box.shape != (4,):
        raise ValueError(f"box must have shape (4,) as x1, y1, x2, y2; got {box.shape}")
    return warp_regions(image, box[None], size, padding, method)[0]
