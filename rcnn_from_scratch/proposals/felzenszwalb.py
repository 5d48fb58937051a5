"""Felzenszwalb-Huttenlocher graph-based segmentation (IJCV 2004), the readable version.

Selective search starts from this over-segmentation. The idea in four steps:

1. Smooth the image with a Gaussian (``sigma``), channel by channel.
2. Build a graph: every pixel is a node, joined to its 8 neighbours by an edge whose weight is the
   Euclidean distance of the two pixels' colours.
3. Visit the edges from the lightest to the heaviest. Each component ``C`` remembers its *internal
   difference* ``Int(C)``, the heaviest edge of its minimum spanning tree so far (the weight of the
   edge that last merged it). An edge of weight ``w`` between components ``A`` and ``B`` merges them
   when ``w < min(Int(A) + k / |A|, Int(B) + k / |B|)``: the boundary is no stronger than the
   weakest inside, plus a tolerance ``k / |C|`` that lets small components grow. Larger ``k``
   (scikit-image's ``scale``) gives larger segments.
4. Post-process: visit the edges again in the same order and merge any two components of which one
   has fewer than ``min_size`` pixels.

This module follows scikit-image's ``felzenszwalb`` semantics exactly so that the two can be tested
equal: images are converted to float in ``[0, 1]`` and ``scale`` is divided by 255 (so ``k`` means what
it means in the paper's 0-255 code); smoothing is ``scipy.ndimage.gaussian_filter`` with reflected
borders; the edges are listed right, down, down-right, up-right and sorted by NumPy's default
``argsort``; the tolerance ``Int(C) + k / |C|`` is rounded to float32 before the comparison, as in
scikit-image's Cython kernel. Labels are numbered in raster order of each segment's first pixel.
The union-find loop over the sorted edges is the algorithm itself (each step depends on the previous
merges), so it stays a Python loop: use scikit-image's compiled version for large images.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["felzenszwalb", "pixel_graph"]


def pixel_graph(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8-connected pixel graph of an ``(H, W, C)`` float image, edges sorted by weight.

    Returns:
        ``(edges (E, 2) int64, weights (E,) float64)``: flat pixel indices ``i * W + j`` of the two
        ends of each edge and its weight (colour distance), lightest first. ``E = 4HW - 3H - 3W + 2``.
    """
    H, W = image.shape[:2]
    index = np.arange(H * W).reshape(H, W)
    # (later pixel, earlier pixel) for the right, down, down-right and up-right neighbours
    pairs = [
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
        ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
        ((slice(1, None), slice(1, None)), (slice(None, -1), slice(None, -1))),
        ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))),
    ]
    edges = np.concatenate([np.stack([index[a].ravel(), index[b].ravel()], 1) for a, b in pairs])
    weights = np.concatenate(
        [np.sqrt(np.sum((image[a] - image[b]) ** 2, axis=-1)).ravel() for a, b in pairs]
    )
    order = np.argsort(weights)
    return edges[order], weights[order]


def _find(parent: list[int], i: int) -> int:
    """The root of ``i``'s component, halving the path on the way (keeps the trees flat)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def felzenszwalb(image, scale: float = 1, sigma: float = 0.8, min_size: int = 20) -> np.ndarray:
    """Graph-based segmentation, the same as ``skimage.segmentation.felzenszwalb`` (its defaults).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` (not width-first, whatever scikit-image's docstring says):
            uint8 (divided by 255) or float (used as is, expected in ``[0, 1]``).
        scale: ``k`` of the paper on the 0-255 scale: larger gives larger segments.
        sigma: standard deviation of the Gaussian smoothing, in pixels (0 for none).
        min_size: segments smaller than this are merged into a neighbour in post-processing.

    Returns:
        ``(H, W)`` int64 labels ``0 .. R - 1`` in raster order of each segment's first pixel.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), non-empty; got {arr.shape}")
    if arr.dtype == np.uint8:
        arr = arr / 255.0
    elif np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    else:
        raise ValueError(f"image must be uint8 or float; got dtype {arr.dtype}")
    if scale <= 0 or sigma < 0 or min_size < 0:
        raise ValueError(
            f"need scale > 0, sigma >= 0, min_size >= 0; got {scale}, {sigma}, {min_size}"
        )
    H, W = arr.shape[:2]
    smooth = ndimage.gaussian_filter(arr, sigma=(sigma, sigma, 0), mode="reflect")
    edges, weights = pixel_graph(smooth)
    k = scale / 255.0

    parent = list(range(H * W))
    size = [1] * (H * W)
    internal = [0.0] * (H * W)  # Int(C): the weight of the edge that last merged C
    for (a, b), w in zip(edges.tolist(), weights.tolist(), strict=True):
        ra, rb = _find(parent, a), _find(parent, b)
        if ra == rb:
            continue
        # float32 as in scikit-image's kernel, then compared in float64 (NumPy 2 would compare a
        # Python float with a float32 scalar in float32)
        tolerance = float(
            min(np.float32(internal[ra] + k / size[ra]), np.float32(internal[rb] + k / size[rb]))
        )
        if w < tolerance:
            root, child = min(ra, rb), max(ra, rb)  # the smaller index roots: raster-order labels
            parent[child] = root
            size[root] += size[child]
            internal[root] = w  # edges come in increasing order: w is the new heaviest MST edge

    for a, b in edges.tolist():  # post-processing: absorb the too-small segments
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            root, child = min(ra, rb), max(ra, rb)
            parent[child] = root
            size[root] += size[child]

    roots = np.array([_find(parent, i) for i in range(H * W)])
    return np.unique(roots, return_inverse=True)[1].reshape(H, W).astype(np.int64)
