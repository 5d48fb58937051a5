"""Figures of notebook 03's step-by-step view (as matterport's model inspection shows it): the RPN's
objectness over the image, the top anchors and the boxes their deltas decode to, the proposal layer's
steps with their recall, and the second stage (RoIs before and after box refinement, per-class NMS).

Every function takes what :meth:`FasterRCNN.inspect` returns; boxes are ``x1, y1, x2, y2`` in image
pixels.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..conventions import as_boxes, as_rgb_uint8
from ..datasets.shapes import CLASS_NAMES
from .boxes import draw_boxes
from .shapes import CLASS_COLOURS

__all__ = [
    "plot_objectness_map",
    "plot_top_anchors",
    "plot_proposal_steps",
    "plot_recall",
    "plot_second_stage",
]


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_objectness_map(image, objectness, feature_size, stride: int) -> Figure:
    """The RPN's objectness over the image: for each cell, the highest probability of its ``A``
    anchors, drawn over the cell's anchor centre (``(stride j, stride i)``, torchvision's corner).

    Args:
        image: ``H x W x 3`` image.
        objectness: ``(h w A,)`` logits in the anchors' order (cell by cell).
        feature_size: ``(h, w)`` of the feature map.
        stride: image pixels per cell.
    """
    h, w = feature_size
    logits = np.asarray(objectness, np.float64).reshape(h, w, -1)
    best = (0.5 * (1 + np.tanh(0.5 * logits))).max(axis=2)  # (h, w) probabilities
    fig = Figure(figsize=(8.4, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    img = as_rgb_uint8(image)
    left.imshow(img)
    left.set_title("the image")
    right.imshow(img)
    # cell (i, j) is drawn as a stride x stride square centred on its anchor centre (imshow: -0.5)
    extent = (
        -stride / 2 - 0.5,
        (w - 0.5) * stride - 0.5,
        (h - 0.5) * stride - 0.5,
        -stride / 2 - 0.5,
    )
    shown = right.imshow(best, cmap="magma", vmin=0, vmax=1, alpha=0.75, extent=extent)
    right.set(xlim=(-0.5, img.shape[1] - 0.5), ylim=(img.shape[0] - 0.5, -0.5))
    right.set_title(f"objectness, best of {logits.shape[2]} anchors per cell ({h} x {w})")
    fig.colorbar(shown, ax=right, shrink=0.8, label="probability")
    for ax in (left, right):
        _off(ax)
    return fig


def _size_ratio(box) -> str:
    w, h = box[2] - box[0], box[3] - box[1]
    return f"size {np.sqrt(w * h):.0f}, ratio {h / w:.1f}"


def plot_top_anchors(image, anchors, decoded, scores=None, names=None) -> Figure:
    """Left: the anchors with the highest objectness (labelled with their size and ratio h / w);
    right: the same anchors (dashed) and the boxes their deltas decode to (solid, same colour).

    Args:
        anchors: ``(k, 4)`` anchors, best first.
        decoded: ``(k, 4)`` the same anchors moved by their predicted deltas.
        scores: optional ``(k,)`` objectness probabilities, shown in the legend.
        names: optional ``k`` labels (e.g. :func:`viz.anchors.anchor_names`); by default each
            anchor's measured size ``sqrt(w h)`` and ratio ``h / w`` (rounded anchors: 1.8, not 2).
    """
    anchors, decoded = as_boxes(anchors, "anchors"), as_boxes(decoded, "decoded")
    if len(anchors) != len(decoded):
        raise ValueError(f"anchors and decoded must have the same length; got {len(anchors)} "
                         f"and {len(decoded)}")  # fmt: skip
    fig = Figure(figsize=(10.5, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    img = as_rgb_uint8(image)
    for ax in (left, right):
        ax.imshow(img)
        _off(ax)
    for k, (a, d) in enumerate(zip(anchors, decoded, strict=True)):
        colour = f"C{k % 10}"
        label = names[k] if names is not None else _size_ratio(a)
        label += f", p {scores[k]:.2f}" if scores is not None else ""
        draw_boxes(left, a[None], color=colour, linewidth=1.2)
        left.patches[-1].set_label(label)
        draw_boxes(right, a[None], color=colour, linewidth=0.8)
        right.patches[-1].set_linestyle("--")
        draw_boxes(right, d[None], color=colour, linewidth=1.6)
    left.set_title(f"the {len(anchors)} anchors with the highest objectness")
    right.set_title("anchors (dashed) moved by their deltas (solid)")
    left.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7, frameon=False)
    return fig


def plot_proposal_steps(image, steps: dict, show: int = 40) -> Figure:
    """One panel per step of the proposal layer, each with the best ``show`` of its boxes.

    Args:
        steps: ``{name: (n, 4) boxes, best first}``, in the order the layer applies them.
    """
    fig = Figure(figsize=(3.0 * len(steps), 3.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(steps)))
    img = as_rgb_uint8(image)
    for ax, (name, boxes) in zip(axes, steps.items(), strict=True):
        boxes = as_boxes(boxes, name)
        ax.imshow(img)
        draw_boxes(ax, boxes[:show], linewidth=0.7, alpha=0.8)
        ax.set(xlim=(-0.5, img.shape[1] - 0.5), ylim=(img.shape[0] - 0.5, -0.5))
        ax.set_title(f"{name}\n{len(boxes)} boxes (best {min(show, len(boxes))} drawn)", fontsize=9)
        _off(ax)
    return fig


def plot_recall(recall: dict, thresholds=(0.5, 0.7)) -> Figure:
    """Grouped bars: for each step, the fraction of ground-truth objects that some box of that step
    overlaps with IoU at least each threshold.

    Args:
        recall: ``{step name: {threshold: fraction in [0, 1]}}``.
    """
    names = list(recall)
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(thresholds)
    for k, t in enumerate(thresholds):
        values = [recall[n][t] for n in names]
        x = np.arange(len(names)) + (k - (len(thresholds) - 1) / 2) * width
        bars = ax.bar(x, values, width, label=f"IoU >= {t}")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(np.arange(len(names)), names, fontsize=8)
    ax.set(ylabel="recall (fraction of objects)", ylim=(0, 1.1))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def plot_second_stage(image, proposals, refined, class_logits, detections, show: int = 20,
                      score_threshold: float = 0.5) -> Figure:  # fmt: skip
    """The box head, step by step. Left: the best ``show`` RoIs (the RPN's proposals); middle: each
    moved by the box head's deltas for its most likely class (colour: that class); right: what
    per-class NMS keeps, scoring at least ``score_threshold``.

    Args:
        proposals: ``(R, 4)`` RoIs, best first.
        refined: ``(R, K, 4)`` each RoI decoded for each foreground class.
        class_logits: ``(R, K + 1)`` the box head's class scores, background first.
        detections: ``{"boxes", "labels", "scores"}`` after per-class NMS.
    """
    proposals = as_boxes(proposals, "proposals")
    refined = np.asarray(refined, np.float32)
    logits = np.asarray(class_logits, np.float64)
    if refined.shape[:1] != (len(proposals),) or logits.shape[0] != len(proposals):
        raise ValueError("proposals, refined and class_logits must have one row per RoI")
    best = logits[:, 1:].argmax(axis=1)  # most likely foreground class, 0-based
    background = logits.argmax(axis=1) == 0  # the head thinks it is background
    moved = refined[np.arange(len(proposals)), best]
    fig = Figure(figsize=(10.5, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    img = as_rgb_uint8(image)
    for ax in axes:
        ax.imshow(img)
        _off(ax)
    n = min(show, len(proposals))
    draw_boxes(axes[0], proposals[:n], color="white", linewidth=0.8)
    axes[0].set_title(f"RoIs: the best {n} of {len(proposals)} proposals", fontsize=9)
    for k in range(n):
        colour = "white" if background[k] else CLASS_COLOURS[best[k] + 1]
        draw_boxes(axes[1], moved[k][None], color=colour, linewidth=0.8)
    axes[1].set_title("refined for the likeliest class (white: background wins)", fontsize=9)
    scores = np.asarray(detections["scores"])
    keep = np.flatnonzero(scores >= score_threshold)
    for k in keep:
        label = int(detections["labels"][k])
        draw_boxes(axes[2], np.asarray(detections["boxes"])[k][None], color=CLASS_COLOURS[label],
                   labels=[f"{CLASS_NAMES[label]} {scores[k]:.2f}"])  # fmt: skip
    axes[2].set_title(f"per-class NMS: {len(keep)} with score >= {score_threshold}", fontsize=9)
    return fig
