"""Figures of boxes: IoU of a pair and what NMS keeps."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..boxes import box_iou, nms
from ..conventions import as_boxes, as_rgb_uint8, as_scores

__all__ = ["draw_boxes", "plot_iou", "plot_nms"]


def draw_boxes(ax, boxes, color="tab:red", labels=None, linewidth=1.5, alpha=1.0) -> None:
    """Draw ``(N, 4)`` pixel boxes on an Axes that shows an image with ``imshow``.

    ``imshow`` puts pixel ``(i, j)``'s centre at ``(j, i)``, so a box in the package's continuous frame
    is drawn shifted by -0.5 to line up with the pixels it covers.
    """
    for k, (x1, y1, x2, y2) in enumerate(as_boxes(boxes)):
        ax.add_patch(
            Rectangle(
                (x1 - 0.5, y1 - 0.5),
                x2 - x1,
                y2 - y1,
                fill=False,
                edgecolor=color,
                linewidth=linewidth,
                alpha=alpha,
            )
        )
        if labels is not None:
            ax.text(
                x1 - 0.5,
                y1 - 1.5,
                str(labels[k]),
                color="white",
                fontsize=7,
                bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "linewidth": 0},
            )


def plot_iou(box_a, box_b) -> Figure:
    """Two boxes, their intersection shaded, and their IoU in the title."""
    a, b = as_boxes([box_a], "box_a")[0], as_boxes([box_b], "box_b")[0]
    fig = Figure(figsize=(4, 4), layout="constrained")
    ax = fig.add_subplot()
    for box, colour in ((a, "tab:blue"), (b, "tab:orange")):
        ax.add_patch(
            Rectangle(
                box[:2], box[2] - box[0], box[3] - box[1], fill=False, edgecolor=colour, linewidth=2
            )
        )
    ix1, iy1 = np.maximum(a[:2], b[:2])
    ix2, iy2 = np.minimum(a[2:], b[2:])
    if ix2 > ix1 and iy2 > iy1:
        ax.add_patch(Rectangle((ix1, iy1), ix2 - ix1, iy2 - iy1, color="tab:green", alpha=0.4))
    lo, hi = np.minimum(a[:2], b[:2]) - 2, np.maximum(a[2:], b[2:]) + 2
    ax.set(xlim=(lo[0], hi[0]), ylim=(hi[1], lo[1]), aspect="equal")
    ax.set_title(f"IoU = {box_iou([a], [b])[0, 0]:.3f}")
    return fig


def plot_nms(image, boxes, scores, iou_threshold: float = 0.5) -> Figure:
    """Side by side: every candidate box (opacity by score), and the boxes :func:`nms` keeps."""
    img = as_rgb_uint8(image)
    b = as_boxes(boxes)
    s = as_scores(scores, len(b))
    keep = nms(b, s, iou_threshold)
    fig = Figure(figsize=(9, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(img)
    rank = np.empty(len(s))
    rank[np.argsort(s)] = np.linspace(0.15, 1.0, len(s)) if len(s) else []
    for box, alpha in zip(b, rank, strict=True):
        draw_boxes(left, box[None], color="yellow", linewidth=1, alpha=float(alpha))
    left.set_title(f"{len(b)} candidates")
    right.imshow(img)
    draw_boxes(right, b[keep], color="yellow", labels=[f"{v:.2f}" for v in s[keep]])
    right.set_title(f"after NMS (IoU > {iou_threshold:g} suppressed): {len(keep)} kept")
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
