"""What selective search knows about each region: colour and texture histograms, size, box, neighbours.

Uijlings et al. (IJCV 2013), section 3. Every feature is computed for all regions at once from the
label image of the initial segmentation (``np.bincount`` over the pixels, the boxes from one
``scipy.ndimage.find_objects`` pass), and is *additive*: the feature of a union of two regions is the
size-weighted mean of theirs, so merging never has to go back to the pixels.

- colour: 25 bins per channel, L1-normalised over all channels (75 numbers for 3 channels);
- texture: Gaussian derivatives with sigma = 1 in 8 orientations per channel, a 10-bin histogram of
  each response, L1-normalised (240 numbers for 3 channels);
- size in pixels and the tight box ``x1, y1, x2, y2`` in the package's continuous pixel frame;
- adjacency: two regions are neighbours when two of their pixels touch (8-connectivity, the graph
  the initial segmentation works on).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage
from skimage import color

from ..conventions import as_rgb_float

__all__ = [
    "COLOUR_SPACES",
    "COLOUR_BINS",
    "TEXTURE_BINS",
    "TEXTURE_ORIENTATIONS",
    "RegionFeatures",
    "convert_colour",
    "texture_responses",
    "histogram_bins",
    "pixel_bins",
    "region_features",
    "region_adjacency",
]

COLOUR_BINS = 25
TEXTURE_BINS = 10
TEXTURE_ORIENTATIONS = 8

# the paper's colour spaces (Table 1); "rgi" and "hue" are the (partly) intensity-invariant ones
COLOUR_SPACES = ("rgb", "hsv", "lab", "rgi", "hue", "intensity")


def convert_colour(image, space: str) -> np.ndarray:
    """An RGB image in one of :data:`COLOUR_SPACES`, every channel scaled to ``[0, 1]``.

    Args:
        image: ``H x W x 3`` uint8 or float in ``[0, 1]`` (grayscale and RGBA converted).
        space: ``"rgb"``, ``"hsv"``, ``"lab"``, ``"rgi"`` (normalised r, g and intensity),
            ``"hue"`` (H of HSV alone) or ``"intensity"`` (the grey value alone).

    Returns:
        ``(H, W, C)`` float64 with ``C`` 3 or 1, values in ``[0, 1]``.
    """
    rgb = as_rgb_float(image).astype(np.float64)
    if space == "rgb":
        out = rgb
    elif space == "hsv":
        out = color.rgb2hsv(rgb)
    elif space == "lab":
        lab = color.rgb2lab(rgb)
        out = np.stack(
            [lab[..., 0] / 100.0, (lab[..., 1] + 128) / 255, (lab[..., 2] + 128) / 255], -1
        )
    elif space == "rgi":
        total = rgb.sum(axis=2, keepdims=True)
        rg = np.divide(rgb[..., :2], total, out=np.full_like(rgb[..., :2], 1 / 3), where=total > 0)
        out = np.concatenate([rg, total / 3], axis=2)
    elif space == "hue":
        out = color.rgb2hsv(rgb)[..., :1]
    elif space == "intensity":
        out = rgb.mean(axis=2, keepdims=True)
    else:
        raise ValueError(f"colour space must be one of {COLOUR_SPACES}; got {space!r}")
    return np.clip(out, 0.0, 1.0)


def texture_responses(channels: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gaussian derivatives of each channel in 8 orientations, ``(H, W, C, 8)`` float64.

    Orientation ``o`` is the derivative along ``theta = o * 45`` degrees,
    ``cos(theta) d/dx + sin(theta) d/dy`` (steerable filters: two filtered images give all eight).
    Opposite orientations are negatives of each other, so their histograms are mirror images and
    add no information; we keep all eight to have the paper's descriptor (240 numbers for 3
    channels). It changes no similarity: the intersection of L1-normalised ``[h, mirror(h)]`` pairs
    equals that of the ``h`` halves alone.
    """
    gx, gy = _gaussian_derivatives(channels, sigma)
    theta = np.arange(TEXTURE_ORIENTATIONS) * (np.pi / 4)
    return gx[..., None] * np.cos(theta) + gy[..., None] * np.sin(theta)  # (H, W, C, 8)


def _gaussian_derivatives(channels: np.ndarray, sigma: float = 1.0):
    """``d/dx`` and ``d/dy`` of each channel smoothed by a Gaussian: two ``(H, W, C)`` arrays."""
    gx = ndimage.gaussian_filter(channels, sigma=(sigma, sigma, 0), order=(0, 1, 0))
    gy = ndimage.gaussian_filter(channels, sigma=(sigma, sigma, 0), order=(1, 0, 0))
    return gx, gy


def histogram_bins(values: np.ndarray, bins: int, lo=0.0, hi=1.0, dtype=np.int64) -> np.ndarray:
    """Bin index in ``[0, bins)`` of each value on ``[lo, hi]`` (``hi`` itself in the last bin).

    ``floor((value - lo) / (hi - lo) * bins)`` clipped to ``[0, bins - 1]``, as ``dtype``.
    """
    span = np.where(np.asarray(hi) > lo, np.asarray(hi) - lo, 1.0)
    position = (values - lo) / span * bins
    np.clip(position, 0, bins - 1, out=position)  # before the cast: the same as clipping after
    return position.astype(dtype)


class RegionFeatures(NamedTuple):
    """Features of ``R`` regions (row ``r`` is label ``r`` of the label image)."""

    size: np.ndarray  # (R,) float64, pixels
    boxes: np.ndarray  # (R, 4) float64, x1, y1, x2, y2 in the continuous pixel frame
    colour: np.ndarray  # (R, 25 C) float64, each row sums to 1
    texture: np.ndarray  # (R, 80 C) float64, each row sums to 1


def _histograms(labels: np.ndarray, bins: np.ndarray, n_bins: int, R: int) -> np.ndarray:
    """L1-normalised per-region histograms from per-pixel bin indices ``(B, H, W)`` into ``(R, B n)``.

    Plane ``p`` (a channel, or a channel's orientation) owns columns ``p n .. p n + n - 1``.
    """
    base = labels * n_bins  # (H, W): region r counts into r n .. r n + n - 1
    hist = np.empty((R, len(bins) * n_bins))
    for p, plane in enumerate(bins):  # a plane at a time: its (R, n) counts stay in cache
        counts = np.bincount((base + plane).ravel(), minlength=R * n_bins)
        hist[:, p * n_bins : (p + 1) * n_bins] = counts.reshape(R, n_bins)
    return hist / np.maximum(hist.sum(axis=1, keepdims=True), 1.0)


def pixel_bins(channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel colour and texture bin indices of an ``(H, W, C)`` image in ``[0, 1]``.

    They depend on the colour space only, so strategies that share a colour space share them.
    Texture bins span each response's range over the whole image. The same numbers as
    ``histogram_bins(texture_responses(channels), TEXTURE_BINS, lo, hi)`` with each response's
    ``lo, hi`` (tested), computed one ``(H, W)`` response at a time so that the work stays in
    cache instead of passing over an ``(H, W, C, 8)`` float64 array several times.

    Returns:
        ``(colour_bins (C, H, W), texture_bins (8 C, H, W))``, uint8, channel first; texture plane
        ``8 c + o`` is channel ``c`` in orientation ``o``.
    """
    channels = np.asarray(channels)
    H, W, C = channels.shape
    colour_bins = np.ascontiguousarray(
        np.moveaxis(histogram_bins(channels, COLOUR_BINS, dtype=np.uint8), 2, 0)
    )  # (C, H, W)
    gx, gy = (np.ascontiguousarray(np.moveaxis(g, 2, 0)) for g in _gaussian_derivatives(channels))
    theta = np.arange(TEXTURE_ORIENTATIONS) * (np.pi / 4)
    texture_bins = np.empty((C * TEXTURE_ORIENTATIONS, H, W), np.uint8)
    response, scratch = np.empty((H, W)), np.empty((H, W))
    for c in range(C):
        for o, (cos, sin) in enumerate(zip(np.cos(theta), np.sin(theta), strict=True)):
            np.multiply(gx[c], cos, out=response)  # as texture_responses: gx cos + gy sin
            response += np.multiply(gy[c], sin, out=scratch)
            texture_bins[c * TEXTURE_ORIENTATIONS + o] = histogram_bins(
                response, TEXTURE_BINS, response.min(), response.max(), np.uint8
            )
    return colour_bins, texture_bins


def region_features(labels, colour_bins: np.ndarray, texture_bins: np.ndarray) -> RegionFeatures:
    """Size, box, colour and texture histograms of every region of a label image.

    Args:
        labels: ``(H, W)`` int, labels ``0 .. R - 1`` (every label present, as scikit-image's
            ``felzenszwalb`` returns them).
        colour_bins, texture_bins: ``(B, H, W)`` int per-pixel bins from :func:`pixel_bins`.

    Returns:
        :class:`RegionFeatures` with ``R = labels.max() + 1`` rows.
    """
    labels = np.asarray(labels, dtype=np.int64)
    R = int(labels.max()) + 1
    size = np.bincount(labels.ravel(), minlength=R).astype(np.float64)
    # each region's bounding (rows, cols) slices, from one compiled pass over the labels
    slices = ndimage.find_objects(labels + 1)
    missing = sum(s is None for s in slices)
    if missing:
        raise ValueError(f"labels must use every value 0 .. {R - 1}; {missing} of them are missing")
    boxes = np.array(
        [(cols.start, rows.start, cols.stop, rows.stop) for rows, cols in slices], np.float64
    ).reshape(R, 4)  # stop is the right / bottom edge of the last pixel
    return RegionFeatures(
        size,
        boxes,
        _histograms(labels, colour_bins, COLOUR_BINS, R),
        _histograms(labels, texture_bins, TEXTURE_BINS, R),
    )


def region_adjacency(labels) -> np.ndarray:
    """Pairs of touching regions, ``(E, 2)`` int64 with ``a < b`` in each row, rows sorted.

    Two regions touch when a pixel of one is among the 8 neighbours of a pixel of the other.
    """
    labels = np.asarray(labels, dtype=np.int64)
    R = int(labels.max()) + 1 if labels.size else 0
    shifted = [
        (labels[:, 1:], labels[:, :-1]),
        (labels[1:, :], labels[:-1, :]),
        (labels[1:, 1:], labels[:-1, :-1]),
        (labels[1:, :-1], labels[:-1, 1:]),
    ]
    a = np.concatenate([p.ravel() for p, _ in shifted])
    b = np.concatenate([q.ravel() for _, q in shifted])
    differ = a != b
    lo, hi = np.minimum(a, b)[differ], np.maximum(a, b)[differ]
    key = np.unique(lo * R + hi)
    return np.stack([key // max(R, 1), key % max(R, 1)], axis=1).astype(np.int64)
