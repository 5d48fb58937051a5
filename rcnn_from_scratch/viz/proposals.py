"""Figures of region proposals: initial segments, the grouping hierarchy, ranked boxes, warping."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..conventions import as_boxes, as_rgb_float
from ..proposals.selective_search import hierarchy_labels
from ..roi.warp import WARP_METHODS, warp_region
from .boxes import draw_boxes

__all__ = ["mean_colour_image", "plot_segments", "plot_hierarchy", "plot_proposals", "plot_warps"]


def mean_colour_image(image, labels) -> np.ndarray:
    """``(H, W, 3)`` float: every pixel painted with its segment's mean colour."""
    rgb = as_rgb_float(image)
    labels = np.asarray(labels, dtype=np.int64)
    _, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    count = np.bincount(inverse.ravel())
    means = np.stack(
        [np.bincount(inverse.ravel(), rgb[..., c].ravel()) / count for c in range(3)], axis=1
    )  # (R, 3)
    return means[inverse]


def _boundaries(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def plot_segments(image, labels, title="initial segments") -> Figure:
    """The image with segment boundaries, and the segments in their mean colours."""
    rgb = as_rgb_float(image)
    labels = np.asarray(labels)
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    a, b = fig.subplots(1, 2)
    outlined = rgb.copy()
    outlined[_boundaries(labels)] = (1.0, 1.0, 0.0)
    a.imshow(outlined)
    a.set_title(f"{title}: {len(np.unique(labels))} regions")
    b.imshow(mean_colour_image(rgb, labels))
    b.set_title("each region in its mean colour")
    for ax in (a, b):
        ax.axis("off")
    return fig


def plot_hierarchy(image, labels, merges, counts=(None, 200, 50, 10, 3)) -> Figure:
    """The grouping at several levels: the image as ``n`` regions, for each ``n`` in ``counts``
    (``None`` is the initial segmentation). ``merges`` comes from the grouping's Hierarchy."""
    R = int(np.max(labels)) + 1
    merges = np.asarray(merges).reshape(-1, 2)
    fig = Figure(figsize=(3 * len(counts), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(counts)))
    for ax, n in zip(axes, counts, strict=True):
        n = R if n is None else min(n, R)
        n_merges = min(R - n, len(merges))
        level = hierarchy_labels(labels, merges, n_merges)
        ax.imshow(mean_colour_image(image, level))
        ax.set_title(f"{R - n_merges} regions")
        ax.axis("off")
    return fig


def plot_proposals(image, boxes, n=(10, 100, 1000), gt_boxes=None) -> Figure:
    """The first ``n`` ranked boxes over the image, one panel per ``n``; ground truth in green."""
    rgb = as_rgb_float(image)
    boxes = as_boxes(boxes)
    fig = Figure(figsize=(4 * len(n), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(n)))
    for ax, count in zip(axes, n, strict=True):
        ax.imshow(rgb)
        draw_boxes(ax, boxes[:count], color="tab:red", linewidth=0.6, alpha=0.6)
        if gt_boxes is not None:
            draw_boxes(ax, gt_boxes, color="tab:green", linewidth=2)
        ax.set_title(f"first {min(count, len(boxes))} of {len(boxes)} proposals")
        ax.axis("off")
    return fig


def plot_warps(image, box, size=227, padding=16) -> Figure:
    """R-CNN's three warping methods side by side, with the aspect ratio (w / h) of the object
    before (the box) and after (in the warped frame)."""
    x1, y1, x2, y2 = as_boxes(np.asarray(box)[None], "box")[0]
    w, h = x2 - x1, y2 - y1
    fig = Figure(figsize=(3.2 * (1 + len(WARP_METHODS)), 3.6), layout="constrained")
    axes = fig.subplots(1, 1 + len(WARP_METHODS))
    axes[0].imshow(as_rgb_float(image))
    draw_boxes(axes[0], [[x1, y1, x2, y2]], color="tab:red", linewidth=2)
    axes[0].set_title(f"box {w:.0f} x {h:.0f}, aspect {w / max(h, 1e-9):.2f}")
    inner = size - 2 * padding
    for ax, method in zip(axes[1:], WARP_METHODS, strict=True):
        ax.imshow(warp_region(image, box, size, padding, method))
        ww, hh = (
            (inner, inner) if method == "warp" else (inner * w / max(w, h), inner * h / max(w, h))
        )
        c = size / 2  # the object's box in the warped frame
        draw_boxes(ax, [[c - ww / 2, c - hh / 2, c + ww / 2, c + hh / 2]], color="tab:red")
        ax.set_title(f"{method}, p = {padding}: aspect {ww / max(hh, 1e-9):.2f}")
        ax.axis("off")
    axes[0].axis("off")
    return fig
