"""Figures of notebook 04 (Mask R-CNN): mask targets, per-class mask channels, the worked example
as a mask, and grids of results."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..conventions import as_boxes, as_rgb_uint8
from ..datasets.shapes import CLASS_NAMES
from ..postprocess import paste_masks_in_image
from .boxes import draw_boxes
from .shapes import CLASS_COLOURS, draw_detections

__all__ = [
    "plot_mask_targets",
    "plot_mask_channels",
    "plot_mask_pasting",
    "plot_mask_through_roi",
    "plot_results",
]


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


def plot_mask_channels(image, boxes, probabilities, labels) -> Figure:
    """Detections, one row each: the box, and the mask head's sigmoid output in *every* class
    channel. Only the predicted class's channel is used; the others were never trained on objects
    of this class (a row per class shows each channel on an object of its own class).

    Args:
        image: the ``H x W x 3`` image, or a list of ``D`` images (one per row).
        boxes: ``(D, 4)`` boxes (or one ``(4,)`` box).
        probabilities: ``(D, C, M, M)`` sigmoid outputs (or ``(C, M, M)`` for one box).
        labels: ``(D,)`` predicted classes, 1 .. C (or one int).
    """
    p = np.asarray(probabilities, np.float32)
    p = p[None] if p.ndim == 3 else p
    boxes = as_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), "boxes")
    labels = np.asarray(labels, np.int64).reshape(-1)
    if p.ndim != 4 or not len(p) == len(boxes) == len(labels):
        raise ValueError(f"probabilities must have shape ({len(boxes)}, C, M, M) to go with "
                         f"{len(boxes)} boxes and labels; got {np.shape(probabilities)}")  # fmt: skip
    D, C = p.shape[:2]
    fig = Figure(figsize=(2.3 * (C + 1), 2.5 * D), layout="constrained")
    axes = np.asarray(fig.subplots(D, C + 1, squeeze=False))
    images = list(image) if isinstance(image, (list, tuple)) else [image] * D
    if len(images) != D:
        raise ValueError(f"image must be one image or a list of {D}; got {len(images)} images")
    for d in range(D):
        axes[d, 0].imshow(as_rgb_uint8(images[d]))
        draw_boxes(axes[d, 0], boxes[d][None], color="yellow")
        axes[d, 0].set_title(f"detected: {CLASS_NAMES[labels[d]]}", fontsize=9)
        for c in range(C):
            ax = axes[d, c + 1]
            ax.imshow(p[d, c], cmap="viridis", vmin=0, vmax=1)
            used = " (used)" if c + 1 == labels[d] else ""
            ax.set_title(f"{CLASS_NAMES[c + 1]} channel{used}", fontsize=9)
    for ax in axes.ravel():
        _off(ax)
    return fig


def plot_mask_pasting(image, box, probabilities, threshold: float = 0.5) -> Figure:
    """How an ``M x M`` mask becomes an image mask. Left: the mask head's probabilities, with the
    ``threshold`` contour; middle: the same ``M x M`` grid stretched over its box in the image
    (each mask pixel covers ``w / M x h / M`` image pixels); right: the mask resampled bilinearly to
    the image pixels inside the box and thresholded (:func:`postprocess.paste_masks_in_image`).

    Args:
        box: ``(4,)`` the detection's box in image pixels.
        probabilities: ``(M, M)`` sigmoid outputs of its class's channel.
    """
    p = np.asarray(probabilities, np.float32)
    if p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"probabilities must have shape (M, M); got {p.shape}")
    x1, y1, x2, y2 = as_boxes(np.asarray(box, np.float32).reshape(1, 4), "box")[0]
    img = as_rgb_uint8(image)
    pasted = paste_masks_in_image(p[None], np.array([[x1, y1, x2, y2]]), img.shape[:2], threshold)[
        0
    ]
    M = p.shape[0]
    fig = Figure(figsize=(10.5, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(p, cmap="viridis", vmin=0, vmax=1)
    axes[0].contour(p, levels=[threshold], colors="white", linewidths=1)
    axes[0].set_title(f"{M} x {M} probabilities, {threshold} contour (white)", fontsize=9)
    margin = 0.25 * max(x2 - x1, y2 - y1)
    window = dict(
        xlim=(x1 - margin - 0.5, x2 + margin - 0.5), ylim=(y2 + margin - 0.5, y1 - margin - 0.5)
    )
    axes[1].imshow(img)
    axes[1].imshow(p, cmap="viridis", vmin=0, vmax=1, alpha=0.8,
                   extent=(x1 - 0.5, x2 - 0.5, y2 - 0.5, y1 - 0.5))  # fmt: skip
    draw_boxes(axes[1], np.array([[x1, y1, x2, y2]]), color="yellow", linewidth=1)
    axes[1].set(**window)
    axes[1].set_title(f"stretched over its {x2 - x1:.1f} x {y2 - y1:.1f} box", fontsize=9)
    axes[2].imshow(img)
    axes[2].imshow(np.ma.masked_where(~pasted, pasted), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
    axes[2].contour(pasted, levels=[0.5], colors="white", linewidths=1)
    draw_boxes(axes[2], np.array([[x1, y1, x2, y2]]), color="yellow", linewidth=1)
    axes[2].set(**window)
    axes[2].set_title(f"in image pixels, >= {threshold}: {int(pasted.sum())} pixels", fontsize=9)
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
    """A grid of images with their predicted boxes and masks (ground-truth boxes dashed); each
    mask's outline is drawn in its class's colour, so a mask stays visible where tints overlap or
    match the object's own colour."""
    n = len(samples)
    rows = max(1, -(-n // columns))
    fig = Figure(figsize=(2.6 * columns, 2.6 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, columns, squeeze=False)).ravel()
    for k, ax in enumerate(axes):
        if k >= n:
            ax.set_axis_off()
            continue
        image, target = samples[k]
        pred = predictions[k]
        draw_detections(image, pred, ax=ax, score_threshold=score_threshold,
                        ground_truth=target)  # fmt: skip
        scores = np.asarray(pred.get("scores", np.ones(len(pred["boxes"]))))
        for d in np.flatnonzero(scores >= score_threshold) if pred.get("masks") is not None else []:
            mask = np.asarray(pred["masks"][d], np.float32)
            if mask.any():
                ax.contour(mask, levels=[0.5], colors=CLASS_COLOURS[int(pred["labels"][d])],
                           linewidths=1.2)  # fmt: skip
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    return fig
