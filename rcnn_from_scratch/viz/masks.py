"""Figures of notebook 04 (Mask R-CNN): mask targets, per-class mask channels, the worked example
as a mask, and grids of results."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..conventions import as_boxes, as_rgb_uint8
from ..datasets.shapes import CLASS_NAMES
from .boxes import draw_boxes
from .shapes import draw_detections

__all__ = ["plot_mask_targets", "plot_mask_channels", "plot_mask_through_roi", "plot_results"]


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_mask_targets(image, boxes, targets, labels=None) -> Figure:
    """Top row: the image with each positive RoI; bottom row: each RoI's ``M x M`` mask target
    (the ground-truth mask resampled into the RoI, what the mask head must output)."""
    boxes = as_boxes(boxes, "boxes")
    n = len(boxes)
    fig = Figure(figsize=(2.2 * max(n, 1), 4.6), layout="constrained")
    axes = np.asarray(fig.subplots(2, max(n, 1), squeeze=False))
    for k in range(max(n, 1)):
        top, bottom = axes[0, k], axes[1, k]
        top.imshow(as_rgb_uint8(image))
        _off(top)
        _off(bottom)
        if k >= n:
            continue
        draw_boxes(top, boxes[k][None], color="yellow")
        bottom.imshow(targets[k], cmap="gray", vmin=0, vmax=1)
        name = CLASS_NAMES[labels[k]] if labels is not None else f"RoI {k}"
        bottom.set_title(
            f"{name}: {targets[k].shape[0]} x {targets[k].shape[1]} target", fontsize=8
        )
    return fig


def plot_mask_channels(image, box, probabilities, label: int) -> Figure:
    """One detection: its box, and the mask head's sigmoid output in *every* class channel. Only
    the predicted class's channel is used; the others were never trained on this object's class."""
    C = len(probabilities)
    fig = Figure(figsize=(2.3 * (C + 1), 2.6), layout="constrained")
    axes = fig.subplots(1, C + 1)
    axes[0].imshow(as_rgb_uint8(image))
    draw_boxes(axes[0], as_boxes(np.asarray(box)[None], "box"), color="yellow")
    axes[0].set_title(f"detected: {CLASS_NAMES[label]}", fontsize=9)
    for c in range(C):
        ax = axes[c + 1]
        ax.imshow(probabilities[c], cmap="viridis", vmin=0, vmax=1)
        used = " (used)" if c + 1 == label else ""
        ax.set_title(f"{CLASS_NAMES[c + 1]} channel{used}", fontsize=9)
    for ax in axes:
        _off(ax)
    return fig


def plot_mask_through_roi(example) -> Figure:
    """:func:`roi.worked_example.mask_through_roi`: the object, the 25 x 25 map it lands on, and the
    masks RoI pooling and RoIAlign give back, with their IoU."""
    fig = Figure(figsize=(10, 2.8), layout="constrained")
    axes = fig.subplots(1, 4)
    ys, xs = np.nonzero(example.truth)
    window = (slice(ys.min() - 6, ys.max() + 7), slice(xs.min() - 6, xs.max() + 7))
    axes[0].imshow(example.truth[window], cmap="gray")
    axes[0].set_title("the object (15 x 15 box)", fontsize=9)
    cy, cx = np.nonzero(example.feature > 0)
    near = (slice(max(cy.min() - 2, 0), cy.max() + 3), slice(max(cx.min() - 2, 0), cx.max() + 3))
    axes[1].imshow(example.feature[near], cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("its coverage of the 25 x 25 map (zoomed)", fontsize=9)
    for ax, mask, name, iou in (
        (axes[2], example.pooled_mask, "RoI pooling", example.iou_pooled),
        (axes[3], example.aligned_mask, "RoIAlign", example.iou_aligned),
    ):
        ax.imshow(example.truth[window].astype(float) * 0.35 + mask[window] * 0.65, cmap="gray")
        ax.set_title(f"{name}: mask IoU {iou:.2f}", fontsize=9)
    fig.supxlabel("white: object and mask; dark grey: object missed; light grey: mask outside it",
                 fontsize=9)  # fmt: skip
    for ax in axes:
        _off(ax)
    return fig


def plot_results(samples, predictions, columns: int = 4, score_threshold: float = 0.5,
                 titles=None) -> Figure:  # fmt: skip
    """A grid of images with their predicted boxes and masks (ground-truth boxes dashed)."""
    n = len(samples)
    rows = max(1, -(-n // columns))
    fig = Figure(figsize=(2.6 * columns, 2.6 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, columns, squeeze=False)).ravel()
    for k, ax in enumerate(axes):
        if k >= n:
            ax.set_axis_off()
            continue
        image, target = samples[k]
        draw_detections(image, predictions[k], ax=ax, score_threshold=score_threshold,
                        ground_truth=target)  # fmt: skip
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    return fig
