"""Figures of the RoI pooling versus RoIAlign notebook: the grids, the misalignment, the crops.

All grid figures are drawn in continuous feature-map coordinates: cell ``(i, j)`` covers
``[j, j + 1) x [i, i + 1)``, and an image point ``u`` sits at ``u / stride``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from ..conventions import as_rgb_float
from ..roi.roi_align import roi_align, roi_align_sample_points
from ..roi.roi_pool import roi_pool, roi_pool_bins
from ..roi.worked_example import bin_misalignment, worked_example

__all__ = ["plot_roi_grids", "plot_misalignment", "plot_pooled_vs_aligned", "average_pool_image"]


def _grid(ax, lo: int, hi: int) -> None:
    for v in range(lo, hi + 1):
        ax.axhline(v, color="0.8", lw=0.8, zorder=0)
        ax.axvline(v, color="0.8", lw=0.8, zorder=0)
    ax.set(
        xlim=(lo, hi),
        ylim=(hi, lo),
        aspect="equal",
        xlabel="feature x (cells)",
        ylabel="feature y (cells)",
    )


def _pool_bins(ax, by0, by1, bx0, bx1, output_size: int) -> None:
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for i in range(output_size):
        for j in range(output_size):
            c = colours[(i * output_size + j) % 4]
            corner, w, h = (bx0[j], by0[i]), bx1[j] - bx0[j], by1[i] - by0[i]
            ax.add_patch(Rectangle(corner, w, h, color=c, alpha=0.25))
            ax.add_patch(Rectangle(corner, w, h, fill=False, ec=c, lw=1.5))


def plot_roi_grids(image_size: int = 128, roi=(40.0, 40.0, 55.0, 55.0), feature_size: int = 25,
                   output_size: int = 2, sampling_ratio: int = 2) -> Figure:  # fmt: skip
    """The worked example on the feature grid, three ways. Left, the lecture's rule: the start
    rounded to a cell, the size floored to whole cells (2.93 -> 2, 0.93 lost), split into equal
    bins. Middle, torchvision's ``roi_pool``: both ends rounded, both end cells counted, bins of whole
    cells (:func:`roi_pool_bins`). Right, RoIAlign's exact box, its bins and its bilinear sampling
    points (``aligned=True``)."""
    scale = feature_size / image_size
    rois = np.array([[0.0, *roi]])
    x1, y1, x2, y2 = (v * scale for v in roi)
    lo, hi = int(np.floor(min(x1, y1))) - 1, int(np.ceil(max(x2, y2))) + 2
    ex = worked_example(image_size, roi[2] - roi[0], feature_size)
    fig = Figure(figsize=(15, 5.4), layout="constrained")
    lecture, left, right = fig.subplots(1, 3)
    for ax in (lecture, left, right):
        _grid(ax, lo, hi)
        ax.add_patch(
            Rectangle(
                (x1, y1), x2 - x1, y2 - y1, fill=False, ec="k", lw=2, ls="--", label="the RoI"
            )
        )
    # the lecture's rule: start rounded to a cell, floor(2.93) = 2 cells kept, equal bins
    sx, sy = np.floor(x1 + 0.5), np.floor(y1 + 0.5)
    kw, kh = np.floor(x2 - x1), np.floor(y2 - y1)
    edges_x = sx + kw * np.arange(output_size + 1) / output_size
    edges_y = sy + kh * np.arange(output_size + 1) / output_size
    _pool_bins(lecture, edges_y[:-1], edges_y[1:], edges_x[:-1], edges_x[1:], output_size)
    lecture.set_title(
        f"the lecture's rule: {ex.roi_cells:.2f} -> {ex.pooled_cells} cells "
        f"({ex.lost_cells:.2f} lost)"
    )
    by0, by1, bx0, bx1 = (
        a[0]
        for a in roi_pool_bins(rois, scale, (output_size, output_size), feature_size, feature_size)
    )
    _pool_bins(left, by0, by1, bx0, bx1, output_size)
    left.set_title(
        f"torchvision's roi_pool: ends rounded, {int(bx1[-1] - bx0[0])} x {int(by1[-1] - by0[0])} "
        "cells read"
    )
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    ys, xs = roi_align_sample_points(rois, output_size, scale, sampling_ratio, aligned=True)[0]
    bw, bh = (x2 - x1) / output_size, (y2 - y1) / output_size
    for i in range(output_size):
        for j in range(output_size):
            c = colours[(i * output_size + j) % 4]
            right.add_patch(Rectangle((x1 + j * bw, y1 + i * bh), bw, bh, color=c, alpha=0.25))
            gx, gy = np.meshgrid(xs[j] + 0.5, ys[i] + 0.5)  # index frame -> continuous cells
            right.plot(gx.ravel(), gy.ravel(), "o", color=c, ms=5)
    right.set_title(f"RoIAlign: exact box ({ex.roi_cells:.2f} cells), bilinear samples")
    lecture.legend(loc="lower right")
    return fig


def plot_misalignment(strides=(4, 8, 16, 32), num_rois: int = 2000, output_size: int = 7) -> Figure:
    """Mean and 95th percentile of the bin-edge misalignment (image pixels) per feature stride."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    stats = {name: ([], []) for name in ("roi_pool", "roi_align")}
    for s in strides:
        m = bin_misalignment(s, num_rois, output_size)
        for name in stats:
            stats[name][0].append(m[name].mean())
            stats[name][1].append(np.percentile(m[name], 95))
    for name, colour in (("roi_pool", "tab:red"), ("roi_align", "tab:blue")):
        mean, p95 = stats[name]
        ax.plot(strides, mean, "o-", color=colour, label=f"{name}: mean")
        ax.plot(strides, p95, "s--", color=colour, alpha=0.6, label=f"{name}: 95th percentile")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(list(strides)))
    ax.xaxis.set_major_formatter(FixedFormatter([str(s) for s in strides]))
    ax.xaxis.set_minor_locator(NullLocator())  # no 6 x 10^0 between the strides
    ax.set(xlabel="feature stride (image pixels per cell, log scale)",
           ylabel="bin edge error (image pixels)")  # fmt: skip
    ax.set_title(f"Where each {output_size}x{output_size} bin reads, against where it should")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # off the curves
    return fig


def average_pool_image(image, stride: int) -> np.ndarray:
    """A stand-in feature map: the image averaged over ``stride x stride`` blocks, ``(1, 3, H/s, W/s)``."""
    rgb = as_rgb_float(image)
    H, W = (d // stride * stride for d in rgb.shape[:2])
    blocks = rgb[:H, :W].reshape(H // stride, stride, W // stride, stride, 3).mean(axis=(1, 3))
    return blocks.transpose(2, 0, 1)[None].astype(np.float32)


def plot_pooled_vs_aligned(image, box, stride: int = 8, output_size: int = 14) -> Figure:
    """One object read from a stride-``stride`` map of the image by each operator, beside the image."""
    features = average_pool_image(image, stride)
    rois = np.array([[0.0, *box]], np.float32)
    pooled = roi_pool(features, rois, output_size, 1.0 / stride)[0].transpose(1, 2, 0)
    aligned = roi_align(features, rois, output_size, 1.0 / stride, 2, aligned=True)[0].transpose(
        1, 2, 0
    )
    x1, y1, x2, y2 = box
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(as_rgb_float(image))
    axes[0].add_patch(
        Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="yellow", lw=2)
    )
    axes[0].set_title("the box in the image")
    axes[1].imshow(np.clip(pooled, 0, 1))
    axes[1].set_title(f"roi_pool, stride {stride}")
    axes[2].imshow(np.clip(aligned, 0, 1))
    axes[2].set_title(f"roi_align (aligned), stride {stride}")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
