"""Exercises on bilinear interpolation: the four weights of a point, then reading a whole map."""

from __future__ import annotations

import math

import numpy as np

from ..bilinear import bilinear_interpolate, linear_interpolation_weights
from .checker import Case, Exercise

__all__ = ["EXERCISES", "bilinear_weights"]

FRAME = (
    "Array-index frame: the value feature[..., i, j] sits exactly at the point (y, x) = (i, j) "
    "(a box coordinate u becomes the index u - 0.5)."
)


def bilinear_weights(y, x):
    """The weights of the four neighbours of the point ``(y, x)`` (array-index frame, ``y, x >= 0``).

    Args:
        y, x: float coordinates of one point.

    Returns:
        ``(2, 2)`` float64 ``w``: ``w[a, b]`` multiplies ``feature[floor(y) + a, floor(x) + b]``;
        ``w = [[(1-ly)(1-lx), (1-ly) lx], [ly (1-lx), ly lx]]`` with ``ly = y - floor(y)``.
    """
    y, x = float(y), float(x)
    if not (y >= 0 and x >= 0):
        raise ValueError(f"y and x must be >= 0 (inside the map); got {y}, {x}")
    wy = linear_interpolation_weights(y, math.floor(y) + 2)
    wx = linear_interpolation_weights(x, math.floor(x) + 2)
    return np.outer([wy.w_lo, wy.w_hi], [wx.w_lo, wx.w_hi])


def _weights_cases():
    swapped = (
        "each neighbour is weighted by the area of the rectangle OPPOSITE it: the nearer neighbour "
        "gets the larger weight, so f[y0, x0] gets (1 - ly)(1 - lx), not ly lx"
    )
    return [
        Case("a point on a pixel: all the weight on that pixel", (2.0, 3.0), hint=swapped,
             also=((np.array([[0.0, 0], [0, 1]]), swapped),)),
        Case("the point (0.25, 0.1): [[0.675, 0.075], [0.225, 0.025]]", (0.25, 0.1),
             hint=swapped,
             also=((np.array([[0.025, 0.225], [0.075, 0.675]]), swapped),
                   (np.array([[0.675, 0.225], [0.075, 0.025]]),
                    "rows are y and columns are x: w[a, b] weights feature[y0 + a, x0 + b]; your "
                    "matrix is transposed"))),
        Case("the point (3.7, 1.2): y0 = floor(y) = 3, so 0 <= ly < 1", (3.7, 1.2),
             hint="take y0 = floor(y) (not round(y)): the fractions ly = y - y0 and lx lie in "
                  "[0, 1) and every weight is >= 0"),
    ]  # fmt: skip


def _weights_random(rng):
    return Case("a random point", (float(rng.uniform(0, 10)), float(rng.uniform(0, 10))), hint="")


def _map(h, w):
    return np.arange(h * w, dtype=np.float64).reshape(h, w)


def _interp_cases():
    f = _map(3, 4)  # f[i, j] = 4 i + j
    linear = np.fromfunction(lambda i, j: 2 * i + 3 * j + 1, (3, 4))
    last_row = "a point on or beyond the last row (floor(y) >= H - 1) reads row H - 1 only"
    return [
        Case("a point on a pixel reads that pixel: (y, x) = (1, 2) gives f[1, 2]", (f, 1.0, 2.0),
             hint="feature[y, x]: the first index is the row, y",
             also=((np.array(9.0), "feature[y, x]: the first index is the row, y; you read "
                                   "feature[x, y]"),
                   (np.array(11.0), "each neighbour is weighted by the area of the rectangle "
                                    "OPPOSITE it: a point on a pixel reads that pixel alone"))),
        Case("the centre of four pixels reads their mean", (f, 0.5, 0.5),
             hint="interpolate between the four neighbours: do not round or floor the point to "
                  "one pixel",
             also=((np.array(0.0), "floor instead of interpolation: you read f[floor(y), floor(x)]"
                                   "; weight the four neighbours instead"),
                   (np.array(5.0), "rounding instead of interpolation: weight the four "
                                   "neighbours instead"))),
        Case("a linear map a y + b x + c is reproduced exactly", (linear, 1.25, 0.6),
             hint="each neighbour is weighted by the area of the rectangle OPPOSITE it: "
                  "f[y0, x0] gets (1 - ly)(1 - lx)"),
        Case("arrays of points: y and x of shape (2, 3) give (2, 3) values",
             (f, np.array([[0.0, 0.5, 1.0], [1.5, 0.2, 1.9]]),
              np.array([[0.0, 0.5, 1.0], [2.5, 0.3, 0.1]])),
             hint="work on whole arrays: np.floor(y), and index feature[..., y0, x0] with arrays",
             shape_rule=True),
        Case("a point on the last row, y = H - 1", (f, 2.0, 1.5),
             hint=last_row + " (no row H exists to interpolate with)"),
        Case("between the last row and H, the point is clamped onto the last row", (f, 2.5, 1.5),
             hint=last_row + "; only a point beyond y = H reads 0"),
        Case("between the last column and W, the point is clamped onto the last column",
             (f, 1.0, 3.6), hint="a point with floor(x) >= W - 1 reads column W - 1 only"),
        Case("a point in [-1, 0) reads row 0", (f, -0.5, 1.0),
             hint="y in [-1, 0) is clamped to 0 and reads row 0; NumPy's index -1 is the LAST "
                  "row, never read it"),
        Case("a point beyond the border band reads 0", (f, -1.5, 1.0),
             hint="a point with y < -1 or y > H (or x < -1 or x > W) reads 0: it lies outside "
                  "the map and its border band"),
        Case("a (C, H, W) map gives (C, *S): channels first",
             (np.stack([f, -f]), np.array([0.5, 1.5]), np.array([1.0, 2.25])),
             hint="for a (C, H, W) map read feature[..., y0, x0]: the result is (C, *S)",
             shape_rule=True),
    ]  # fmt: skip


def _interp_random(rng):
    C, H, W = (int(v) for v in rng.integers(1, 6, 3))
    f = rng.normal(size=(C, H, W)) if rng.random() < 0.5 else rng.normal(size=(H, W))
    n = int(rng.integers(1, 7))
    return Case(
        "random points in and around the map",
        (f, rng.uniform(-1.5, H + 0.5, n), rng.uniform(-1.5, W + 0.5, n)),
        hint="check the border rules: [-1, 0) clamps to 0, floor >= size - 1 reads the last "
        "row or column, beyond -1 or size reads 0",
    )


EXERCISES = [
    Exercise(
        "bilinear_weights", "bilinear_weights(y, x) -> (2, 2) float",
        FRAME + " For a point (y, x) >= 0 with y0 = floor(y), x0 = floor(x), ly = y - y0, "
        "lx = x - x0, return the weights w[a, b] of the four neighbours feature[y0 + a, x0 + b].",
        "each neighbour's weight is the area of the rectangle opposite it in the unit square; "
        "the four weights sum to 1",
        bilinear_weights, _weights_cases, _weights_random, parameters=("y", "x"),
    ),
    Exercise(
        "bilinear_interpolate", "bilinear_interpolate(feature, y, x) -> (C, *S) or S",
        FRAME + " Read feature ((C, H, W) or (H, W)) at the points (y, x), arrays of one shape S, "
        "each a weighted sum of its four neighbours. Border rule (torchvision's roi_align): a "
        "point with y < -1 or y > H (or x < -1 or x > W) reads 0; otherwise y < 0 becomes 0, and "
        "when floor(y) >= H - 1 both neighbours are row H - 1 (likewise x).",
        "clip first: valid = (y >= -1) & (y <= H); y = max(y, 0); y0 = floor(y); where "
        "y0 >= H - 1 set y0 = y1 = H - 1 and ly = 0; then the four weighted reads",
        bilinear_interpolate, _interp_cases, _interp_random, parameters=("feature", "y", "x"),
    ),
]  # fmt: skip
