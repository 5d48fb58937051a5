"""Figures of boxes: IoU of a pair, the IoU thresholds of the stages, the box encoding, what NMS keeps."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..boxes import box_iou, nms
from ..conventions import as_boxes, as_rgb_uint8, as_scores

__all__ = [
    "boxes_at_iou",
    "draw_boxes",
    "plot_box_encoding",
    "plot_iou",
    "plot_iou_thresholds",
    "plot_nms",
]


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


def boxes_at_iou(box, ious) -> np.ndarray:
    """``(len(ious), 4)`` copies of ``box`` shifted right until their IoU with it is each value of
    ``ious`` (same size, so ``IoU = (w - s) / (w + s)`` for a shift ``s``, i.e. ``s = w (1 - t) / (1 + t)``).
    """
    (x1, y1, x2, y2) = as_boxes([box], "box")[0]
    t = np.asarray(ious, np.float64).reshape(-1)
    if np.any((t <= 0) | (t > 1)):
        raise ValueError(f"ious must lie in (0, 1]; got {t.tolist()}")
    shift = (x2 - x1) * (1 - t) / (1 + t)
    return np.stack([x1 + shift, np.full_like(t, y1), x2 + shift, np.full_like(t, y2)], axis=1)


def plot_iou_thresholds(box, thresholds=None) -> Figure:
    """One panel per IoU threshold the stages use: the ground-truth ``box`` (blue) and a box of the
    same size shifted until its IoU with it is exactly the threshold (orange), intersection shaded.

    ``thresholds``: ``{IoU: caption}``; by default the lecture's 0.3 / 0.5 / 0.7.
    """
    if thresholds is None:
        thresholds = {
            0.3: "RPN / R-CNN SVM negative below",
            0.5: "detection correct, RoI foreground at or above",
            0.7: "RPN positive at or above",
        }
    g = as_boxes([box], "box")[0]
    shifted = boxes_at_iou(g, list(thresholds))
    fig = Figure(figsize=(3.3 * len(thresholds), 2.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(thresholds)))
    pad = 0.15 * (g[2] - g[0])
    for ax, b, caption in zip(axes, shifted, thresholds.values(), strict=True):
        for bb, colour in ((g, "tab:blue"), (b, "tab:orange")):
            ax.add_patch(Rectangle(bb[:2], bb[2] - bb[0], bb[3] - bb[1], fill=False,
                                   edgecolor=colour, linewidth=2))  # fmt: skip
        ix1, ix2 = max(g[0], b[0]), min(g[2], b[2])
        ax.add_patch(Rectangle((ix1, g[1]), ix2 - ix1, g[3] - g[1], color="tab:green", alpha=0.4))
        ax.set(xlim=(g[0] - pad, shifted[:, 2].max() + pad), ylim=(g[3] + pad, g[1] - pad))
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"IoU = {box_iou([g], [b])[0, 0]:.2f}\n{caption}", fontsize=9)
    return fig


def plot_box_encoding(anchor, target, deltas=None) -> Figure:
    """An anchor (or proposal) ``P`` in blue, a target ``G`` in green, their centres, and the four
    deltas ``t_x = (g_x - p_x) / p_w``, ``t_y = (g_y - p_y) / p_h``, ``t_w = log(g_w / p_w)``,
    ``t_h = log(g_h / p_h)`` in the title (``deltas`` if given, else computed with unit weights)."""
    p, g = as_boxes([anchor], "anchor")[0], as_boxes([target], "target")[0]
    pw, ph, gw, gh = p[2] - p[0], p[3] - p[1], g[2] - g[0], g[3] - g[1]
    pc = np.array([p[0] + pw / 2, p[1] + ph / 2])
    gc = np.array([g[0] + gw / 2, g[1] + gh / 2])
    if deltas is None:
        deltas = [(gc[0] - pc[0]) / pw, (gc[1] - pc[1]) / ph, np.log(gw / pw), np.log(gh / ph)]
    tx, ty, tw, th = (float(d) for d in deltas)
    fig = Figure(figsize=(4.6, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for b, colour, name in ((p, "tab:blue", "anchor P"), (g, "tab:green", "target G")):
        ax.add_patch(Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fill=False, edgecolor=colour,
                               linewidth=2, label=f"{name}: {b[2] - b[0]:g} x {b[3] - b[1]:g}"))  # fmt: skip
    ax.plot(*pc, "o", color="tab:blue")
    ax.plot(*gc, "o", color="tab:green")
    ax.annotate("", xy=gc, xytext=pc, arrowprops={"arrowstyle": "->", "color": "k"})
    lo = np.minimum(p[:2], g[:2]) - 0.1 * max(pw, ph)
    hi = np.maximum(p[2:], g[2:]) + 0.1 * max(pw, ph)
    ax.set(xlim=(lo[0], hi[0]), ylim=(hi[1], lo[1]), xlabel="x (pixels)", ylabel="y (pixels)")
    ax.set_aspect("equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1, fontsize=8, frameon=False)
    ax.set_title(f"t_x = {tx:.3f}, t_y = {ty:.3f}\nt_w = {tw:.3f}, t_h = {th:.3f}", fontsize=10)
    return fig
