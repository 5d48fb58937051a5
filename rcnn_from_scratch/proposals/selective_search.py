"""Selective search (Uijlings, van de Sande, Gevers and Smeulders, IJCV 2013): R-CNN's proposals.

1. Over-segment the image with Felzenszwalb-Huttenlocher (scikit-image's ``felzenszwalb``; our
   readable version is :mod:`.felzenszwalb`).
2. Hierarchical grouping: repeatedly merge the two most similar *adjacent* regions until one region
   is left; every region ever formed, initial or merged, gives a box.
3. Diversify: repeat step 1-2 with several colour spaces, several ``k`` and several similarity
   combinations (a "strategy" is one of each), and pool the boxes.
4. Rank: within a strategy, the region formed last (the whole image) has level 1, the one before
   level 2, ...; each box gets ``random * level`` and the pooled boxes are sorted by it, so large,
   late regions tend to come first while every strategy contributes early; duplicates are removed.

Similarities of regions ``a`` and ``b`` (all in ``[0, 1]``), combined as a sum of the chosen ones:

- colour  ``sum_k min(c_a[k], c_b[k])`` over the colour histograms (histogram intersection);
- texture ``sum_k min(t_a[k], t_b[k])`` over the texture histograms;
- size    ``1 - (size_a + size_b) / size_image``: small regions merge first, so that the hierarchy
  grows evenly all over the image;
- fill    ``1 - (area(box_ab) - size_a - size_b) / size_image``: regions that fill each other's gaps.

The fast path keeps the candidate pairs in a priority queue and, after a merge, computes only the
similarities of the new region with its neighbours (a pair of live regions never changes similarity;
entries that mention a merged-away region are skipped when popped). :func:`hierarchical_grouping_reference`
rescans every adjacent pair at every step, the lecture's loop, and is tested to give the same hierarchy.

Strategies that share a colour space share its pixel bins, and those that share a colour space and a
``k`` share the segmentation and the region features. Those are independent of each other and made
in threads (the colour conversion, the filters, Felzenszwalb's compiled loop and the bincounts release
Python's GIL); the grouping and the ranking run afterwards, so any number of threads gives the same
boxes in the same order.
"""

from __future__ import annotations

import heapq
import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from skimage.segmentation import felzenszwalb as skimage_felzenszwalb

from ..boxes import box_iou
from ..conventions import as_boxes, as_rgb_float
from .region_features import (
    COLOUR_SPACES,
    RegionFeatures,
    convert_colour,
    pixel_bins,
    region_adjacency,
    region_features,
)

__all__ = [
    "SIMILARITIES",
    "MODES",
    "Strategy",
    "strategies",
    "similarity",
    "Hierarchy",
    "hierarchical_grouping",
    "hierarchical_grouping_reference",
    "hierarchy_labels",
    "initial_segmentation",
    "selective_search",
    "selective_search_reference",
    "best_overlaps",
    "recall_and_mabo",
]

# weights of (colour, texture, size, fill) in the paper's similarity combinations
SIMILARITIES = {
    "CTSF": (1, 1, 1, 1),
    "TSF": (0, 1, 1, 1),
    "F": (0, 0, 0, 1),
    "S": (0, 0, 1, 0),
}

# the paper's section 5.2 (single strategy, "Selective Search Fast" and "Quality")
MODES = {
    "single": {"colour_spaces": ("hsv",), "ks": (100,), "similarities": ("CTSF",)},
    "fast": {"colour_spaces": ("hsv", "lab"), "ks": (50, 100), "similarities": ("CTSF", "TSF")},
    "quality": {
        "colour_spaces": ("hsv", "lab", "rgi", "hue", "intensity"),
        "ks": (50, 100, 150, 300),
        "similarities": ("CTSF", "TSF", "F", "S"),
    },
}


class Strategy(NamedTuple):
    """One diversification strategy: a colour space, a ``k`` and a similarity combination."""

    colour_space: str
    k: float
    similarity: str


def strategies(mode="fast", colour_spaces=None, ks=None, similarities=None) -> list[Strategy]:
    """The strategies of a mode, any of whose three lists may be overridden."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {tuple(MODES)}; got {mode!r}")
    spaces = tuple(colour_spaces or MODES[mode]["colour_spaces"])
    ks = tuple(ks or MODES[mode]["ks"])
    sims = tuple(similarities or MODES[mode]["similarities"])
    for s in spaces:
        if s not in COLOUR_SPACES:
            raise ValueError(f"colour_spaces must be taken from {COLOUR_SPACES}; got {s!r}")
    for s in sims:
        if s not in SIMILARITIES:
            raise ValueError(f"similarities must be taken from {tuple(SIMILARITIES)}; got {s!r}")
    if any(k <= 0 for k in ks):
        raise ValueError(f"ks must be positive; got {ks}")
    return [Strategy(c, k, s) for c in spaces for k in ks for s in sims]


class _Regions(NamedTuple):
    """Growable per-region arrays; rows ``0 .. R-1`` initial regions, then one row per merge."""

    size: np.ndarray  # (2R-1,)
    boxes: np.ndarray  # (2R-1, 4)
    hist: np.ndarray  # (2R-1, D) colour and/or texture histograms side by side (D may be 0)


def _prepare(features: RegionFeatures, weights) -> _Regions:
    R = len(features.size)
    parts = [h for w, h in zip(weights[:2], (features.colour, features.texture), strict=True) if w]
    hist = np.concatenate(parts, axis=1) if parts else np.zeros((R, 0))
    n = max(2 * R - 1, 0)
    out = _Regions(np.zeros(n), np.zeros((n, 4)), np.zeros((n, hist.shape[1])))
    out.size[:R], out.boxes[:R], out.hist[:R] = features.size, features.boxes, hist
    return out


def similarity(regions: _Regions, a, b, weights, image_size: float) -> np.ndarray:
    """Combined similarity of region pairs ``(a[i], b[i])``, ``(E,)`` float64.

    The colour and texture parts are one histogram intersection over the chosen blocks side by side
    (a sum of the two intersections); size and fill follow the module docstring.
    """
    a, b = np.asarray(a), np.asarray(b)
    s = np.minimum(regions.hist[a], regions.hist[b]).sum(axis=-1)
    if weights[2]:
        s = s + 1.0 - (regions.size[a] + regions.size[b]) / image_size
    if weights[3]:
        lo = np.minimum(regions.boxes[a, :2], regions.boxes[b, :2])
        hi = np.maximum(regions.boxes[a, 2:], regions.boxes[b, 2:])
        box_area = np.prod(hi - lo, axis=-1)
        s = s + 1.0 - (box_area - regions.size[a] - regions.size[b]) / image_size
    return s


def _merge(regions: _Regions, a: int, b: int, t: int) -> None:
    """Row ``t`` becomes the union of rows ``a`` and ``b`` (histograms: size-weighted means)."""
    sa, sb = regions.size[a], regions.size[b]
    regions.size[t] = sa + sb
    regions.boxes[t, :2] = np.minimum(regions.boxes[a, :2], regions.boxes[b, :2])
    regions.boxes[t, 2:] = np.maximum(regions.boxes[a, 2:], regions.boxes[b, 2:])
    regions.hist[t] = (sa * regions.hist[a] + sb * regions.hist[b]) / (sa + sb)


class Hierarchy(NamedTuple):
    """The result of grouping: ``2R - 1`` boxes (fewer if the adjacency graph is not connected)."""

    boxes: np.ndarray  # (M, 4) float64, initial regions first, then merged regions in merge order
    merges: np.ndarray  # (M - R, 2) int64, the two rows merged into row R + i


def hierarchical_grouping(features: RegionFeatures, adjacency, weights) -> Hierarchy:
    """Greedy merging of the most similar adjacent pair, with a priority queue (the fast path).

    Args:
        features: of the ``R`` initial regions (:func:`.region_features.region_features`).
        adjacency: ``(E, 2)`` int pairs of touching regions, ``a < b``.
        weights: ``(colour, texture, size, fill)``, each 0 or 1.

    Returns:
        :class:`Hierarchy`. Ties go to the pair with the smaller ``(a, b)``.

    After a merge only the new region's row of similarities is computed: one histogram
    intersection for all its neighbours at once, then the size and fill terms on Python floats
    (a handful of neighbours: cheaper than a dozen small array operations, the same IEEE
    arithmetic in the same order as :func:`similarity`, so the same numbers).
    """
    regions = _prepare(features, weights)
    hist = regions.hist
    R = len(features.size)
    image_size = float(features.size.sum())
    adjacency = np.asarray(adjacency, dtype=np.int64).reshape(-1, 2)
    neighbours: list[set | None] = [set() for _ in range(R)]
    for a, b in adjacency.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    sims = similarity(regions, adjacency[:, 0], adjacency[:, 1], weights, image_size)
    heap = list(zip((-sims).tolist(), *adjacency.T.tolist(), strict=True))
    heapq.heapify(heap)
    size, box = features.size.tolist(), features.boxes.tolist()  # grow by one row per merge
    alive = [True] * R
    merges = []
    t = R
    while heap:
        _, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue  # a stale pair: one side was merged away already
        sa, sb = size[a], size[b]
        (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = box[a], box[b]
        st, bt = sa + sb, [min(ax1, bx1), min(ay1, by1), max(ax2, bx2), max(ay2, by2)]
        size.append(st)
        box.append(bt)
        hist[t] = (sa * hist[a] + sb * hist[b]) / st  # as _merge
        alive[a] = alive[b] = False
        alive.append(True)
        merges.append((a, b))
        around = neighbours[a] | neighbours[b]
        around -= {a, b}
        neighbours[a] = neighbours[b] = None
        for n in around:
            neighbours[n] -= {a, b}
            neighbours[n].add(t)
        neighbours.append(around)
        if around:
            idx = list(around)
            scores = np.minimum(hist[idx], hist[t]).sum(axis=-1).tolist()
            for s, n in zip(scores, idx, strict=True):
                if weights[2]:
                    s = s + 1.0 - (size[n] + st) / image_size
                if weights[3]:
                    x1, y1, x2, y2 = box[n]
                    w, h = max(x2, bt[2]) - min(x1, bt[0]), max(y2, bt[3]) - min(y1, bt[1])
                    s = s + 1.0 - (w * h - size[n] - st) / image_size
                heapq.heappush(heap, (-s, n, t))
        t += 1
    boxes = np.asarray(box, np.float64).reshape(-1, 4)
    return Hierarchy(boxes, np.asarray(merges, np.int64).reshape(-1, 2))


def hierarchical_grouping_reference(features: RegionFeatures, adjacency, weights) -> Hierarchy:
    """The same grouping as the lecture states it: at every step, score every adjacent pair and
    merge the best. Slow (quadratic), obviously correct, same result as :func:`hierarchical_grouping`.
    """
    regions = _prepare(features, weights)
    R = len(features.size)
    image_size = float(features.size.sum())
    pairs = {tuple(p) for p in np.asarray(adjacency, dtype=np.int64).reshape(-1, 2).tolist()}
    merges = []
    t = R
    while pairs:
        best = None
        for a, b in sorted(pairs):  # sorted: ties go to the smaller pair, as in the heap
            s = float(similarity(regions, [a], [b], weights, image_size)[0])
            if best is None or s > best[0]:
                best = (s, a, b)
        _, a, b = best
        _merge(regions, a, b, t)
        merges.append((a, b))
        # the new region inherits its parts' neighbours
        touching = {p for p in pairs if a in p or b in p}
        others = {n for p in touching for n in p} - {a, b}
        pairs = (pairs - touching) | {(n, t) for n in others}
        t += 1
    return Hierarchy(regions.boxes[:t].copy(), np.asarray(merges, np.int64).reshape(-1, 2))


def hierarchy_labels(labels, merges, n_merges: int) -> np.ndarray:
    """The label image after the first ``n_merges`` merges of a hierarchy (for figures).

    Args:
        labels: ``(H, W)`` initial labels ``0 .. R - 1``.
        merges: ``(M, 2)`` from :class:`Hierarchy`; merge ``i`` formed region ``R + i``.
        n_merges: how many merges to apply, ``0 .. M``.

    Returns:
        ``(H, W)`` int64, each pixel's region id at that level (ids as in the hierarchy).
    """
    labels = np.asarray(labels, dtype=np.int64)
    R = int(labels.max()) + 1
    merges = np.asarray(merges, dtype=np.int64).reshape(-1, 2)
    if not 0 <= n_merges <= len(merges):
        raise ValueError(f"n_merges must lie in [0, {len(merges)}]; got {n_merges}")
    owner = np.arange(R + n_merges)  # region -> the region that absorbed it
    for i, (a, b) in enumerate(merges[:n_merges].tolist()):
        owner[a] = owner[b] = R + i
    for i in range(R + n_merges - 1, -1, -1):  # later ids first: owners resolve top-down
        owner[i] = owner[owner[i]]
    return owner[labels]


def initial_segmentation(channels: np.ndarray, k: float, sigma: float = 0.8) -> np.ndarray:
    """Felzenszwalb-Huttenlocher labels ``(H, W)`` of a ``[0, 1]`` image; ``min_size = k`` as in
    the paper's code (scikit-image rescales ``k`` by 1/255, so it means what it means on 0-255)."""
    return skimage_felzenszwalb(channels, scale=k, sigma=sigma, min_size=int(k), channel_axis=-1)


def selective_search(
    image,
    mode: str = "fast",
    *,
    colour_spaces=None,
    ks=None,
    similarities=None,
    sigma: float = 0.8,
    seed: int = 0,
    max_boxes: int | None = None,
    grouping=hierarchical_grouping,
    threads: int | None = None,
) -> np.ndarray:
    """Selective search object proposals, ranked, best first.

    Args:
        image: ``H x W x 3`` uint8 or float in ``[0, 1]`` (grayscale, RGBA converted).
        mode: ``"single"`` (HSV, k = 100, C+T+S+F: 1 strategy), ``"fast"`` (HSV and Lab, k = 50 and
            100, C+T+S+F and T+S+F: 8 strategies) or ``"quality"`` (HSV, Lab, rgI, H, I; k = 50,
            100, 150, 300; C+T+S+F, T+S+F, F, S: 80 strategies), the paper's definitions.
        colour_spaces, ks, similarities: override the mode's lists (names as in
            :data:`.region_features.COLOUR_SPACES` and :data:`SIMILARITIES`).
        sigma: Gaussian smoothing of the initial segmentation.
        seed: seed of the random ranking (the same seed gives the same order).
        max_boxes: keep at most this many (the best); ``None`` keeps all.
        grouping: :func:`hierarchical_grouping` or :func:`hierarchical_grouping_reference`.
        threads: worker threads for the per-colour-space and per-segmentation work (``None``: one
            per core). Any number gives the same boxes in the same order.

    Returns:
        ``(N, 4)`` float32 boxes ``x1, y1, x2, y2`` in continuous pixel coordinates (integers, on
        pixel edges, inside ``[0, W] x [0, H]``), unique, ranked by ``random * level``.
    """
    rgb = as_rgb_float(image)
    plan = strategies(mode, colour_spaces, ks, similarities)
    if max_boxes is not None and max_boxes < 0:
        raise ValueError(f"max_boxes must be >= 0 or None; got {max_boxes}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise ValueError(f"threads must be a positive int or None; got {threads!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be a positive int or None; got {threads!r}")
    spaces = list(dict.fromkeys(s.colour_space for s in plan))
    segmentations = list(dict.fromkeys((s.colour_space, s.k) for s in plan))

    def colour_and_bins(space):  # the pixel bins depend on the colour space only
        channels = convert_colour(rgb, space)
        return (channels, *pixel_bins(channels))

    def segment(space_and_k):
        space, k = space_and_k
        channels, colour_bins, texture_bins = pixels[space]
        labels = initial_segmentation(channels, k, sigma)
        return region_features(labels, colour_bins, texture_bins), region_adjacency(labels)

    # The heavy steps (colour conversion, texture filters, Felzenszwalb's compiled loop, bincounts)
    # run in NumPy / scikit-image code that releases the GIL, so threads share them over the cores.
    # The grouping is Python-bound and runs afterwards in this thread: run beside array work it
    # would make that work wait for the GIL after every operation.
    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
        pixels = dict(zip(spaces, pool.map(colour_and_bins, spaces), strict=True))
        regions = dict(zip(segmentations, pool.map(segment, segmentations), strict=True))
    rng = np.random.default_rng(seed)
    boxes, priority = [], []
    for colour_space, k, sim in plan:
        features, adjacency = regions[(colour_space, k)]
        hierarchy = grouping(features, adjacency, SIMILARITIES[sim])
        M = len(hierarchy.boxes)
        level = np.arange(M, 0, -1)  # the last region formed has level 1
        boxes.append(hierarchy.boxes)
        priority.append(rng.random(M) * level)
    boxes = np.concatenate(boxes)
    order = np.argsort(np.concatenate(priority), kind="stable")
    boxes = boxes[order]
    _, first = np.unique(boxes, axis=0, return_index=True)
    boxes = boxes[np.sort(first)]  # the best-ranked copy of each box, in rank order
    return boxes[:max_boxes].astype(np.float32)


def selective_search_reference(image, mode: str = "fast", **kwargs) -> np.ndarray:
    """:func:`selective_search` with the slow, rescan-every-pair grouping (the teaching path);
    the same boxes in the same order. Quadratic in the number of regions: small images only."""
    return selective_search(image, mode, grouping=hierarchical_grouping_reference, **kwargs)


def best_overlaps(proposals, gt_boxes) -> np.ndarray:
    """For each ground-truth box, its best IoU with any proposal: ``(G,)`` float (0 if none)."""
    proposals, gt = as_boxes(proposals, "proposals"), as_boxes(gt_boxes, "gt_boxes")
    if len(proposals) == 0 or len(gt) == 0:
        return np.zeros(len(gt))
    return box_iou(gt, proposals).max(axis=1).astype(np.float64)


def recall_and_mabo(proposals, gt_boxes, thresholds=(0.5, 0.7)) -> tuple[np.ndarray, float]:
    """Recall at each IoU threshold and the mean average best overlap (the paper's MABO over one
    class; pass the boxes of all images' objects through :func:`best_overlaps` for several images).

    Returns:
        ``(recall (T,), mabo)``; a ground truth counts as found when its best IoU is ``>= t``.
    """
    best = best_overlaps(proposals, gt_boxes)
    if len(best) == 0:
        return np.zeros(len(thresholds)), 0.0
    return np.array([(best >= t).mean() for t in thresholds]), float(best.mean())
