"""Figures of the detector notebooks: feature maps, the RoI grid over the image, sampled RoIs,
training curves."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..conventions import as_rgb_uint8
from ..roi.roi_pool import roi_pool_bins
from .boxes import draw_boxes

__all__ = [
    "plot_feature_maps",
    "plot_roi_pool_on_image",
    "plot_sampled_rois",
    "plot_training_curve",
]


def plot_feature_maps(image, features, channels: int = 7) -> Figure:
    """The image beside the first ``channels`` maps of its ``(C, h, w)`` (or ``(1, C, h, w)``) features."""
    f = np.asarray(features)
    f = f[0] if f.ndim == 4 else f
    fig = Figure(figsize=(2.2 * (channels + 1), 2.4), layout="constrained")
    axes = fig.subplots(1, channels + 1)
    axes[0].imshow(as_rgb_uint8(image))
    axes[0].set_title(f"image {np.shape(image)[0]}x{np.shape(image)[1]}")
    for c, ax in enumerate(axes[1:]):
        ax.imshow(f[c], cmap="viridis")
        ax.set_title(f"channel {c}, {f.shape[1]}x{f.shape[2]}", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_roi_pool_on_image(image, box, stride: int = 8, output_size: int = 7) -> Figure:
    """The feature grid (one cell per ``stride`` pixels) over the image, a RoI, and the cells of each of
    RoI pooling's bins, in image pixels."""
    img = as_rgb_uint8(image)
    H, W = img.shape[:2]
    y0, y1, x0, x1 = (
        a[0]
        for a in roi_pool_bins(
            np.array([[0.0, *box]]), 1 / stride, (output_size,) * 2, H // stride, W // stride
        )
    )
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(img)
    for v in range(0, max(H, W) + 1, stride):
        ax.axhline(v - 0.5, color="white", lw=0.4, alpha=0.6)
        ax.axvline(v - 0.5, color="white", lw=0.4, alpha=0.6)
    for i in range(output_size):
        for j in range(output_size):
            corner = (x0[j] * stride - 0.5, y0[i] * stride - 0.5)
            size = ((x1[j] - x0[j]) * stride, (y1[i] - y0[i]) * stride)
            ax.add_patch(Rectangle(corner, *size, fill=False, ec="yellow", lw=0.8, alpha=0.8))
    draw_boxes(ax, np.asarray(box)[None], color="red", linewidth=2)
    ax.set_title(
        f"RoI (red) and its {output_size}x{output_size} pooling bins (yellow), stride {stride}"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_sampled_rois(image, rois, labels) -> Figure:
    """RoIs sampled for one training step: foreground (label > 0) in green, background in red."""
    labels = np.asarray(labels)
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(as_rgb_uint8(image))
    rois = np.asarray(rois, np.float32).reshape(-1, 4)
    draw_boxes(ax, rois[labels == 0], color="red", linewidth=0.8, alpha=0.6)
    draw_boxes(ax, rois[labels > 0], color="lime", linewidth=1.2)
    ax.set_title(
        f"{int((labels > 0).sum())} foreground, {int((labels == 0).sum())} background RoIs"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_training_curve(history: list[dict[str, float]], smooth: int = 20) -> Figure:
    """Each loss of a run (moving average over ``smooth`` steps) and their sum."""
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.add_subplot()
    names = list(history[0]) if history else []
    kernel = np.ones(min(smooth, max(len(history), 1))) / min(smooth, max(len(history), 1))
    total = np.zeros(len(history))
    for name in names:
        v = np.array([h[name] for h in history])
        total += v
        ax.plot(np.convolve(v, kernel, mode="valid"), label=name)
    if len(names) > 1:
        ax.plot(np.convolve(total, kernel, mode="valid"), color="k", label="total")
    ax.set(xlabel="step", ylabel=f"loss (mean of {len(kernel)} steps)", yscale="log")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # off the curves
    return fig
