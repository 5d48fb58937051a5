"""Figures for notebook 00: bilinear interpolation as a weighted mean of four neighbours."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..bilinear import bilinear_interpolate, linear_interpolation_weights, nearest_interpolate

__all__ = [
    "plot_bilinear_weights",
    "plot_interpolation_1d",
    "plot_interpolation_2d",
    "smooth_test_image",
    "plot_interpolation_error",
]


def plot_bilinear_weights(y: float = 0.3, x: float = 0.65) -> Figure:
    """The lecture's figure: a point between four pixel centres and the four opposite areas.

    The unit square has the neighbours ``(0, 0), (0, 1), (1, 0), (1, 1)`` at its corners (array-index
    frame) and the point ``(y, x)`` inside it; the rectangle opposite each neighbour is shaded in that
    neighbour's colour and labelled with its area, which is its weight.
    """
    if not (0 <= y <= 1 and 0 <= x <= 1):
        raise ValueError(f"the point must lie in the unit square; got y={y}, x={x}")
    fig = Figure(figsize=(5.2, 5), layout="constrained")
    ax = fig.add_subplot()
    corners = {(0, 0): "tab:blue", (0, 1): "tab:orange", (1, 0): "tab:green", (1, 1): "tab:red"}
    for (cy, cx), colour in corners.items():
        # the rectangle between the point and the corner diagonally opposite this neighbour
        oy, ox = 1 - cy, 1 - cx
        weight = abs(oy - y) * abs(ox - x)
        ax.add_patch(
            Rectangle((min(x, ox), min(y, oy)), abs(ox - x), abs(oy - y), color=colour, alpha=0.35)
        )
        ax.text((x + ox) / 2, (y + oy) / 2, f"{weight:.3f}", ha="center", va="center", fontsize=11)
        ax.plot(cx, cy, "o", color=colour, markersize=14)
        ax.annotate(
            f"f[{cy}, {cx}]",
            (cx, cy),
            textcoords="offset points",
            xytext=(0, 14 - 32 * cy),
            ha="center",
            fontsize=10,
        )
    ax.plot(x, y, "k*", markersize=16)
    ax.annotate(f"(y, x) = ({y:g}, {x:g})", (x, y), textcoords="offset points", xytext=(8, 8))
    ax.set(
        xlim=(-0.25, 1.25), ylim=(1.3, -0.3), aspect="equal", xlabel="x (column)", ylabel="y (row)"
    )
    ax.set_title("Each neighbour's weight is the area opposite it")
    return fig


def plot_interpolation_1d(values=(1.0, 3.0, 2.0, 4.0, 3.5), samples: int = 200) -> Figure:
    """1-D: samples at integer positions, linear interpolation between them, nearest beside it."""
    v = np.asarray(values, dtype=np.float64)
    t = np.linspace(0, len(v) - 1, samples)
    w = linear_interpolation_weights(t, len(v))
    linear = v[w.lo] * w.w_lo + v[w.hi] * w.w_hi
    nearest = v[np.clip(np.floor(t + 0.5), 0, len(v) - 1).astype(int)]
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(t, nearest, color="tab:gray", label="nearest (rounding)")
    ax.plot(t, linear, color="tab:blue", label="linear: (1 - t) f[k] + t f[k + 1]")
    ax.plot(np.arange(len(v)), v, "ko", label="samples f[k]")
    ax.set(xlabel="position", ylabel="value")
    ax.legend(loc="upper left")
    return fig


def plot_interpolation_2d(feature=None, scale: int = 8) -> Figure:
    """2-D: a small map read on a grid ``scale`` times finer, by rounding and by bilinear weights."""
    f = np.asarray(
        feature if feature is not None else np.random.default_rng(0).random((4, 5)), np.float64
    )
    H, W = f.shape
    yy, xx = np.meshgrid(
        np.linspace(0, H - 1, H * scale), np.linspace(0, W - 1, W * scale), indexing="ij"
    )
    fig = Figure(figsize=(10, 3), layout="constrained")
    for ax, img, title in zip(
        fig.subplots(1, 3),
        (f, nearest_interpolate(f, yy, xx), bilinear_interpolate(f, yy, xx)),
        (f"the {H} x {W} map", "nearest neighbour", "bilinear"),
        strict=True,
    ):
        ax.imshow(img, cmap="viridis", vmin=f.min(), vmax=f.max())
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def smooth_test_image(height: int = 16, width: int = 16):
    """A smooth function and its ``height x width`` samples at integer positions: ``(fn, image)``."""

    def fn(y, x):
        return np.sin(x / 2.5) * np.cos(y / 3.0)

    yy, xx = np.mgrid[0:height, 0:width]
    return fn, fn(yy, xx)


def plot_interpolation_error(y: float = 5.3, x_from: float = 4.0, x_to: float = 6.0) -> Figure:
    """Error of nearest versus bilinear sampling of :func:`smooth_test_image` as a point moves in x.

    Nearest is exact only on the samples and jumps half-way between them; bilinear's error is a
    small smooth bump, largest between samples where the function curves.
    """
    fn, image = smooth_test_image()
    x = np.linspace(x_from, x_to, 401)
    truth = fn(y, x)
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(
        x,
        np.abs(nearest_interpolate(image, y, x) - truth),
        color="tab:gray",
        label="nearest neighbour",
    )
    ax.plot(
        x, np.abs(bilinear_interpolate(image, y, x) - truth), color="tab:blue", label="bilinear"
    )
    for k in range(int(np.ceil(x_from)), int(np.floor(x_to)) + 1):
        ax.axvline(k, color="k", lw=0.5, ls=":")
    ax.set(xlabel=f"x of the sample point (y = {y})", ylabel="absolute error")
    ax.legend()
    return fig
