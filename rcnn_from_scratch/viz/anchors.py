"""Figures of notebook 03 (Faster R-CNN): anchors, their training labels, RPN proposals."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..conventions import as_boxes, as_rgb_uint8
from .boxes import draw_boxes

__all__ = ["anchor_names", "plot_anchors", "plot_anchor_labels", "plot_rpn_proposals"]


def anchor_names(indices, sizes, ratios) -> list[str]:
    """``"size s, ratio r"`` of each anchor, from its index in :class:`AnchorGenerator`'s order
    (cell by cell; within a cell ratio-major, sizes inner, as torchvision lists them).

    Args:
        indices: ``(k,)`` ints, rows of the anchors array.
        sizes: the generator's sizes (one level), e.g. ``(16, 32, 48)``.
        ratios: its aspect ratios, height / width, e.g. ``(0.5, 1, 2)``.
    """
    S, A = len(sizes), len(sizes) * len(ratios)
    return [f"size {sizes[a % S]:g}, ratio {ratios[a // S]:g}"
            for a in (int(i) % A for i in np.asarray(indices).reshape(-1))]  # fmt: skip


def plot_anchors(image, anchors, feature_size, stride: int, location=(8, 8), sizes=None,
                 ratios=None) -> Figure:  # fmt: skip
    """Left: the ``A`` anchors of one feature-map cell; right: every cell's anchor centre.

    Args:
        image: ``H x W x 3`` image the anchors belong to.
        anchors: ``(h w A, 4)`` anchors as :class:`AnchorGenerator` lists them (cell by cell).
        feature_size: ``(h, w)`` of the feature map.
        stride: image pixels per cell.
        location: ``(row, col)`` of the cell shown on the left.
        sizes, ratios: the generator's sizes and ratios (h / w), to name each anchor in the legend;
            without them the legend gives each anchor's measured ``sqrt(w h)`` and ``h / w``.
    """
    anchors = as_boxes(anchors, "anchors")
    h, w = feature_size
    A = len(anchors) // (h * w)
    i, j = location
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    img = as_rgb_uint8(image)
    for ax in (left, right):
        ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
    cell = anchors[(i * w + j) * A : (i * w + j + 1) * A]
    colours = [f"C{k % 10}" for k in range(A)]
    first = (i * w + j) * A
    if sizes is not None and ratios is not None:
        names = anchor_names(range(first, first + A), sizes, ratios)
    else:
        names = [f"{np.sqrt((b[2] - b[0]) * (b[3] - b[1])):.0f} px, h/w {(b[3] - b[1]) / (b[2] - b[0]):.1f}"
                 for b in cell]  # fmt: skip
    for box, colour, name in zip(cell, colours, names, strict=True):
        draw_boxes(left, box[None], color=colour)
        left.patches[-1].set_label(name)
    left.set_title(f"the {A} anchors of cell ({i}, {j})")
    left.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7, frameon=False)
    centres = (anchors[::A, :2] + anchors[::A, 2:]) / 2
    right.plot(centres[:, 0] - 0.5, centres[:, 1] - 0.5, ".", ms=3, color="white", mec="black")
    right.set_title(f"{h} x {w} cells x {A} = {len(anchors)} anchors (centres)")
    return fig


def plot_anchor_labels(image, anchors, targets, max_negatives: int = 40) -> Figure:
    """The anchors an RPN trains on for one image: sampled positives (green, IoU >= 0.7 or an
    object's best anchor) and ``max_negatives`` of the sampled negatives, spread over the image
    (red, IoU < 0.3). The title counts every anchor's label (positive, negative, ignored) and how
    many of each the sample of this step took."""
    anchors = as_boxes(anchors, "anchors")
    fig = Figure(figsize=(4.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(as_rgb_uint8(image))
    neg = np.flatnonzero(targets.sampled_neg)
    neg = neg[np.unique(np.linspace(0, len(neg) - 1, min(max_negatives, len(neg))).astype(int))]
    draw_boxes(ax, anchors[neg], color="tab:red", linewidth=0.7, alpha=0.6)
    draw_boxes(ax, anchors[targets.sampled_pos], color="lime", linewidth=1.5)
    labels = np.asarray(targets.labels)
    ax.set_title(
        f"labelled: {int((labels == 1).sum())} positive, {int((labels == 0).sum())} negative, "
        f"{int((labels == -1).sum())} ignored\nsampled: {int(targets.sampled_pos.sum())} positive "
        f"(green), {int(targets.sampled_neg.sum())} negative (red, {len(neg)} drawn)",
        fontsize=9,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_rpn_proposals(image, before, after, show: int = 60) -> Figure:
    """RPN proposals before and after non-maximum suppression (the ``show`` best of each)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    for ax, boxes, title in zip(fig.subplots(1, 2), (before, after), ("before NMS", "after NMS"),
                                strict=True):  # fmt: skip
        boxes = as_boxes(boxes, "boxes")
        ax.imshow(as_rgb_uint8(image))
        draw_boxes(ax, boxes[:show], linewidth=0.8, alpha=0.8)
        ax.set_title(f"{title}: best {min(show, len(boxes))} of {len(boxes)}")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
