"""Exercises on RoI features: RoI pooling, then RoIAlign (where it samples, its values, ``aligned``)."""

from __future__ import annotations

import numpy as np

from ..roi.roi_align import roi_align, roi_align_sample_points
from ..roi.roi_pool import roi_pool
from .checker import Case, Exercise

__all__ = ["EXERCISES"]

FRAME = (
    "Feature maps are (N, C, H, W) floats; RoIs are (K, 5) rows [n, x1, y1, x2, y2]: the image's "
    "index n first, then a box in image pixels; spatial_scale (1 / stride) maps image pixels to "
    "feature cells."
)


def _map(h, w, n=1, c=1):
    return np.arange(n * c * h * w, dtype=np.float64).reshape(n, c, h, w)


def _squares(h, w):
    """A map that is not linear (``i^2 + j``), so that one sample and the mean of several differ."""
    return np.fromfunction(lambda i, j: i * i + j, (h, w))[None, None].astype(np.float64)


def _r(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def _random_rois(rng, k, n_images, extent):
    xy = rng.uniform(-2, extent, (k, 2))
    wh = rng.uniform(0.3, extent / 1.5, (k, 2))
    n = rng.integers(0, n_images, (k, 1)).astype(np.float64)
    return np.concatenate([n, xy, xy + wh], axis=1)


# ---------------------------------------------------------------- roi_pool


def _pool_cases():
    f4 = _map(4, 4)
    two = _map(4, 4, n=2)
    return [
        Case("RoI [0, 0, 0, 20, 20] at scale 0.1 on a 4 x 4 map, 2 x 2 bins",
             (f4, _r([0, 0, 0, 20, 20]), 2, 0.1),
             hint="scale and round the box (0..2 here), count BOTH end cells (size "
                  "end - start + 1 = 3), bin ph spans floor(ph * 3 / 2) to ceil((ph + 1) * 3 / 2)",
             also=((np.array([[[[0.0, 1], [4, 5]]]]),
                    "the RoI's end cell is included: size = end - start + 1 (torchvision)"),
                   (np.array([[[[0.0, 2], [8, 10]]]]),
                    "bin ph spans floor(ph * h / P) to CEIL((ph + 1) * h / P) from the RoI's "
                    "start: neighbouring bins may share a cell"),
                   (np.array([[[[2.5, 3.5], [6.5, 7.5]]]]),
                    "each bin keeps its MAXIMUM (RoI max pooling), not its mean"),
                   (np.array([[[[15.0, 0], [0, 0]]]]),
                    "multiply the box by spatial_scale first: it maps image pixels to feature "
                    "cells"))),
        Case("a second RoI [0, 10, 10, 30, 30]: rows and columns 1..3",
             (f4, _r([0, 10, 10, 30, 30]), 2, 0.1),
             hint="start = round(x1 * spatial_scale), end = round(x2 * spatial_scale)"),
        Case("x2 = 1.6 cells is rounded to 2, not floored", (f4, _r([0, 0, 0, 16, 0]), 1, 0.1),
             hint="round the scaled coordinates: round(x * spatial_scale), not int() or floor()"),
        Case("halves round away from zero: 2.5 cells is 3", (f4, _r([0, 0, 0, 5, 0]), 1, 0.5),
             hint="torchvision rounds halves away from zero (C's round): np.round(2.5) is 2 (to "
                  "even); use np.floor(x + 0.5) for x >= 0"),
        Case("3 cells into 2 bins: the bins share the middle cell", (f4, _r([0, 0, 0, 2, 0]),
                                                                     (1, 2), 1.0),
             hint="bin ph spans floor(ph * h / P) to ceil((ph + 1) * h / P) from the RoI's start "
                  "(h = 3, P = 2: cells 0-1 and 1-2): neighbouring bins may share a cell"),
        Case("the first column of a RoI is its image: this one reads image 1",
             (two, _r([1, 0, 0, 1, 1]), 1, 1.0),
             hint="rois[k, 0] is the index of the image in the batch: read input[int(rois[k, 0])]"),
        Case("several channels and RoIs: output (K, C, P_h, P_w)",
             (_map(3, 3, c=2), _r([0, 0, 0, 1, 1], [0, 1, 1, 2, 2]), 1, 1.0),
             hint="pool every channel: the output is (K, C, P_h, P_w)", shape_rule=True),
        Case("bins that lie outside the map are empty and give 0",
             (f4, _r([0, 2, 2, 6, 6]), 2, 1.0),
             hint="clip the bin edges to the map; an empty bin (all outside) gives 0, not an error "
                  "or -inf"),
        Case("no RoIs: (0, C, P, P)", (f4, np.zeros((0, 5)), 2, 1.0),
             hint="zero RoIs give np.zeros((0, C, P_h, P_w))", shape_rule=True),
    ]  # fmt: skip


def _pool_random(rng):
    n, c, h, w = 2, int(rng.integers(1, 3)), int(rng.integers(3, 8)), int(rng.integers(3, 8))
    f = rng.normal(size=(n, c, h, w))
    scale = float(rng.choice([1.0, 0.5]))
    rois = _random_rois(rng, int(rng.integers(1, 4)), n, max(h, w) / scale)
    size = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    return Case("random RoIs", (f, rois, size, scale), hint="round, + 1, floor/ceil bin edges")


# ---------------------------------------------------------------- roi_align_sample_points


def _points_cases():
    half = (
        "with aligned=True every sample point moves by half a cell: box * spatial_scale - 0.5 "
        "(pixel centres then land on cell centres)"
    )
    return [
        Case("RoI [0, 0, 0, 4, 4], 2 x 2 bins, 2 x 2 samples per bin: at the bins' quarter points",
             (_r([0, 0, 0, 4, 4]), 2), {"sampling_ratio": 2},
             hint="samples sit at the centres of a regular g x g grid inside each bin: "
                  "start + ph * bin + (iy + 0.5) * bin / g",
             also=(([(np.array([[0.0, 1], [2, 3]]), np.array([[0.0, 1], [2, 3]]))],
                    "samples sit at the CENTRES of the sub-cells: (iy + 0.5) * bin / g, not at "
                    "iy * bin / g (the corners)"),)),
        Case("adaptive sampling (sampling_ratio -1): g = ceil(size / P) per axis",
             (_r([0, 0, 0, 5, 3]), 2),
             hint="sampling_ratio <= 0 means g = ceil(roi_size / P), per axis (here 3 along x, "
                  "2 along y)", shape_rule=True),
        Case("spatial_scale 0.5 maps the box to the feature map",
             (_r([0, 2, 2, 10, 6]), 2), {"spatial_scale": 0.5, "sampling_ratio": 1},
             hint="multiply the box by spatial_scale first"),
        Case("RoIAlign never rounds the box", (_r([0, 0.3, 0.3, 2.7, 2.7]), 2),
             {"sampling_ratio": 1},
             hint="keep the scaled box as it is: no round, no floor (that is RoIPool's "
                  "quantisation, the one RoIAlign removes)"),
        Case("without aligned, a tiny RoI is stretched to 1 cell", (_r([0, 1, 1, 1.2, 1.4]), 1),
             {"sampling_ratio": 2},
             hint="aligned=False: roi_width = max(x2 - x1, 1) and likewise the height"),
        Case("aligned=True: every sample moves by half a cell", (_r([0, 0, 0, 8, 8]), 2),
             {"spatial_scale": 0.5, "sampling_ratio": 2, "aligned": True}, hint=half,
             also=(([(np.array([[0.25, 1.25], [2.25, 3.25]]),) * 2],
                    "subtract the half cell AFTER scaling: x * spatial_scale - 0.5, not "
                    "(x - 0.5) * spatial_scale"),
                   ([(np.array([[1.0, 2.0], [3.0, 4.0]]),) * 2],
                    "aligned=True shifts by MINUS half a cell: x * spatial_scale - 0.5"))),
        Case("aligned=True has no minimum size", (_r([0, 1, 1, 1.2, 1.4]), 1),
             {"sampling_ratio": 2, "aligned": True},
             hint="the minimum size of 1 applies only when aligned=False"),
        Case("output_size (P_h, P_w) = (1, 2): ys (1, g) and xs (2, g)",
             (_r([0, 0, 0, 4, 2]), (1, 2)), {"sampling_ratio": 1},
             hint="output_size may be an int P or a pair (P_h, P_w); ys has P_h rows, xs P_w",
             shape_rule=True),
        Case("one (ys, xs) pair per RoI", (_r([0, 0, 0, 2, 2], [0, 1, 0, 3, 4]), 1),
             {"sampling_ratio": 1}, hint="return a list with one (ys, xs) tuple per RoI",
             shape_rule=True),
    ]  # fmt: skip


def _points_random(rng):
    rois = _random_rois(rng, int(rng.integers(1, 4)), 1, 10.0)
    return Case(
        "random RoIs",
        (rois, (int(rng.integers(1, 4)), int(rng.integers(1, 4)))),
        {
            "spatial_scale": float(rng.choice([1.0, 0.5, 0.25])),
            "sampling_ratio": int(rng.choice([-1, 1, 2, 3])),
            "aligned": bool(rng.random() < 0.5),
        },
        hint="scale, shift if aligned, minimum size 1 unless aligned, bin = size / P, samples at "
        "(i + 0.5) * bin / g",
    )


# ---------------------------------------------------------------- roi_align


def _align_cases():
    f5 = _map(5, 5)
    sq = _squares(5, 5)
    return [
        Case("the 5 x 5 arange map, box [1, 1, 3, 3], 4 x 4 output: first row [7.5, 8, 8.5, 9]",
             (f5, _r([0, 1, 1, 3, 3]), 4),
             hint="read each sample bilinearly (bilinear_interpolate): no floor, no round; that "
                  "quantisation is RoIPool's, the mistake RoIAlign fixes"),
        Case("a bin's value is the mean of its samples", (sq, _r([0, 0, 0, 4, 4]), 1),
             {"sampling_ratio": 2},
             hint="average the g_h x g_w samples of a bin (sampling_ratio of them per axis): the "
                  "mean, not the maximum, and not one sample at the bin's centre"),
        Case("a fractional box is not rounded", (sq, _r([0, 0.6, 0.6, 2.6, 2.6]), 2),
             {"sampling_ratio": 2}, hint="keep the scaled box as it is: no round, no floor"),
        Case("spatial_scale 0.5 maps the box to the feature map", (sq, _r([0, 2, 2, 6, 6]), 2),
             {"spatial_scale": 0.5, "sampling_ratio": 2},
             hint="multiply the box by spatial_scale first"),
        Case("aligned=True on the 5 x 5 example: first row [4.5, 5, 5.5, 6]",
             (f5, _r([0, 1, 1, 3, 3]), 4), {"aligned": True},
             hint="with aligned=True every sample point moves by half a cell: box * "
                  "spatial_scale - 0.5, and no minimum size"),
        Case("samples beyond the map's border band read 0", (sq, _r([0, 3, 3, 7, 7]), 2),
             {"sampling_ratio": 2},
             hint="use the border rule of bilinear_interpolate: a sample with y > H or y < -1 "
                  "reads 0, one in [-1, 0) or past the last row is clamped"),
        Case("the first column of a RoI is its image: this one reads image 1",
             (_map(3, 3, n=2), _r([1, 0, 0, 2, 2]), 1),
             hint="rois[k, 0] is the image's index in the batch: read input[int(rois[k, 0])]"),
        Case("several channels: output (K, C, P_h, P_w)", (_map(3, 3, c=2), _r([0, 0, 0, 2, 2]),
                                                           2),
             hint="interpolate every channel: the output is (K, C, P_h, P_w)", shape_rule=True),
        Case("without aligned, a tiny RoI is stretched to 1 cell", (sq, _r([0, 1, 1, 1.2, 1.2]),
                                                                    2),
             {"sampling_ratio": 1}, hint="aligned=False: roi_width = max(x2 - x1, 1), likewise "
                                        "the height"),
        Case("a rectangular output (2, 3)", (sq, _r([0, 0, 0, 4, 3]), (2, 3)),
             hint="output_size (P_h, P_w): P_h bins down, P_w across", shape_rule=True),
        Case("no RoIs: (0, C, P, P)", (sq, np.zeros((0, 5)), 2),
             hint="zero RoIs give np.zeros((0, C, P_h, P_w))", shape_rule=True),
    ]  # fmt: skip


def _align_random(rng):
    n, c, h, w = 2, int(rng.integers(1, 3)), int(rng.integers(3, 8)), int(rng.integers(3, 8))
    scale = float(rng.choice([1.0, 0.5]))
    return Case(
        "random RoIs",
        (rng.normal(size=(n, c, h, w)), _random_rois(rng, int(rng.integers(1, 4)), n,
                                                     max(h, w) / scale),
         (int(rng.integers(1, 4)), int(rng.integers(1, 4)))),
        {"spatial_scale": scale, "sampling_ratio": int(rng.choice([-1, 1, 2])),
         "aligned": bool(rng.random() < 0.5)},
        hint="sample points as in roi_align_sample_points, each read by bilinear_interpolate, "
        "averaged per bin",
    )  # fmt: skip


_ALIGN_ARGS = ("input", "boxes", "output_size", "spatial_scale", "sampling_ratio", "aligned")

EXERCISES = [
    Exercise(
        "roi_pool", "roi_pool(input, boxes, output_size, spatial_scale=1.0) -> (K, C, P_h, P_w)",
        FRAME + " torchvision's roi_pool: round(x * spatial_scale) (halves away from zero); the "
        "RoI's size counts both end cells, end - start + 1 (at least 1); bin ph covers rows "
        "floor(ph h / P) to ceil((ph + 1) h / P) from the start, clipped to the map; each output "
        "is its bin's maximum, 0 for an empty bin. output_size is P or (P_h, P_w).",
        "for each RoI and bin: compute the row and column range, then "
        "input[n, :, hs:he, ws:we].max(axis=(1, 2))",
        roi_pool, _pool_cases, _pool_random,
        parameters=("input", "boxes", "output_size", "spatial_scale"),
    ),
    Exercise(
        "roi_align_sample_points",
        "roi_align_sample_points(rois, output_size, spatial_scale=1.0, sampling_ratio=-1, "
        "aligned=False) -> [(ys (P_h, g_h), xs (P_w, g_w)), ...]",
        FRAME + " Where RoIAlign samples, in the feature map's array-index frame: start = box * "
        "spatial_scale (- 0.5 if aligned); size = end - start, at least 1 unless aligned; "
        "bin = size / P; g = sampling_ratio if > 0 else ceil(size / P), per axis; sample iy of "
        "bin ph at start + ph * bin + (iy + 0.5) * bin / g. One (ys, xs) pair per RoI.",
        "for one axis: start + np.arange(P)[:, None] * bin + (np.arange(g)[None, :] + 0.5) * "
        "bin / g gives the (P, g) coordinates",
        roi_align_sample_points, _points_cases, _points_random,
        parameters=("rois", "output_size", "spatial_scale", "sampling_ratio", "aligned"),
    ),
    Exercise(
        "roi_align",
        "roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, "
        "aligned=False) -> (K, C, P_h, P_w)",
        FRAME + " torchvision's roi_align: each bin's value is the mean of its samples (placed as "
        "in roi_align_sample_points), each read by bilinear interpolation with the border rule of "
        "bilinear_interpolate. Nothing is rounded.",
        "for each RoI: the sample points, then bilinear_interpolate(input[n], ys, xs) on a "
        "meshgrid of them, then the mean over each bin's g_h x g_w samples",
        roi_align, _align_cases, _align_random, parameters=_ALIGN_ARGS,
    ),
]  # fmt: skip
