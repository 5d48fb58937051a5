"""Exercises on Mask R-CNN's masks: the training target of a RoI, and pasting a mask into its box."""

from __future__ import annotations

import numpy as np

from ..postprocess import paste_masks_in_image
from ..roi.roi_align import roi_align
from ..targets.mask_targets import project_masks_on_boxes
from .checker import Case, Exercise

__all__ = ["EXERCISES"]


def _left(h, w, cols):
    m = np.zeros((h, w), np.float32)
    m[:, :cols] = 1
    return m


def _b(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


# ---------------------------------------------------------------- project_masks_on_boxes


def _through(masks, boxes, size, aligned=False):
    """RoIAlign of mask 0 over each box: the target, or (``aligned=True``) a known wrong one."""
    rois = np.concatenate([np.zeros((len(boxes), 1)), boxes], axis=1)
    return roi_align(masks[:1, None].astype(np.float32), rois, size, 1.0, 0, aligned)[:, 0]


def _target_cases():
    transposed = (
        "row 0 of the target is at the box's y1 and column 0 at its x1; masks are (H, W), rows "
        "are y: your target looks transposed"
    )
    half = _left(8, 8, 4)[None]
    left_args = (half, _b([1, 0, 7, 8]), np.array([0]), 4)
    left = _through(half, left_args[1], 4)
    crop = (
        "crop to the RoI, then resample: the target is the mask SEEN THROUGH the box (cell (0, 0) "
        "at the box's corner), not the whole mask resized"
    )
    thresholded = (
        "keep the soft values (means of bilinear samples); the target is not thresholded, only "
        "the pasted prediction is"
    )
    aligned = (
        "roi_align(..., spatial_scale=1.0, sampling_ratio=0, aligned=False), exactly as "
        "torchvision's project_masks_on_boxes"
    )
    return [
        Case("a full mask gives a target of ones", (np.ones((1, 8, 8), np.float32),
                                                    _b([1, 1, 7, 7]), np.array([0]), 4),
             hint="the target is the mask resampled over the box into size x size cells (use "
                  "the size argument, not a fixed 28): roi_align(masks[:, None], rois, size, 1.0, "
                  "0, False)"),
        Case("an object in the left half: the target's left is 1, its right 0", left_args,
             hint=transposed,
             also=((left.transpose(0, 2, 1), transposed),
                   ((left >= 0.5).astype(np.float32), thresholded),
                   (_through(half, left_args[1], 4, aligned=True), aligned),
                   (_through(half, _b([0, 0, 8, 8]), 4), crop))),
        Case("the box covers only the object: a target of ones", (half, _b([0, 0, 4, 8]),
                                                                  np.array([0]), 4),
             hint=crop),
        Case("each RoI reads its own ground truth: this one is matched to mask 1",
             (np.stack([np.zeros((8, 8), np.float32), _left(8, 8, 8)]), _b([0, 0, 8, 8]),
              np.array([1]), 4),
             hint="RoI k reads gt_masks[matched_gt[k]]: pass matched_gt as the batch index of "
                  "its RoI"),
        Case("at the object's edge the target is soft (between 0 and 1)",
             (_left(8, 8, 3)[None], _b([0, 0, 8, 8]), np.array([0]), 4),
             hint=thresholded),
        Case("torchvision's targets use aligned=False", (_left(8, 8, 3)[None], _b([0, 1, 6, 7]),
                                                         np.array([0]), 4),
             hint=aligned),
        Case("the size argument sets the side: size 3 gives 3 x 3",
             (half, _b([0, 0, 8, 8]), np.array([0]), 3),
             hint="use size (28 in Mask R-CNN), not a fixed 28", shape_rule=True),
        Case("several RoIs: (K, size, size)", (half, _b([0, 0, 8, 8], [2, 2, 6, 6]),
                                               np.array([0, 0]), 2),
             hint="one size x size target per RoI: drop the channel axis of roi_align's "
                  "(K, 1, size, size)", shape_rule=True),
        Case("no RoIs: (0, size, size)", (half, np.zeros((0, 4)), np.zeros(0, np.int64), 4),
             hint="zero RoIs give np.zeros((0, size, size))", shape_rule=True),
    ]  # fmt: skip


def _target_random(rng):
    G, H, W = int(rng.integers(1, 4)), int(rng.integers(6, 12)), int(rng.integers(6, 12))
    masks = (rng.random((G, H, W)) < 0.5).astype(np.float32)
    K = int(rng.integers(1, 4))
    xy = rng.uniform(0, W / 2, (K, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, W / 2, (K, 2))], axis=1)
    return Case(
        "random masks and boxes",
        (masks, boxes, rng.integers(0, G, K), int(rng.integers(2, 8))),
        hint="RoIAlign of gt_masks[matched_gt[k]] over box k",
    )


# ---------------------------------------------------------------- paste_masks_in_image


def _paste_cases():
    centre = (
        "pixel (i, j) belongs to the box when its CENTRE (j + 0.5, i + 0.5) lies inside it: here "
        "columns and rows 1 and 2 (x2 = 3 is the edge, not a pixel)"
    )
    bilinear = (
        "read the mask bilinearly at each pixel's centre: mask index x = (j + 0.5 - x1) / (x2 - "
        "x1) * M - 0.5 (not the nearest mask cell, not the pixel's corner)"
    )
    return [
        Case("a full mask fills the pixels whose centres lie in the box",
             (np.ones((1, 2, 2)), _b([1, 1, 3, 3]), (5, 5)), hint=centre),
        Case("a box with fractional edges [0.6, 0.6, 2.4, 2.4] holds one pixel centre",
             (np.ones((1, 2, 2)), _b([0.6, 0.6, 2.4, 2.4]), (4, 4)),
             hint=centre.split(":")[0]),
        Case("a mask whose left column is on paints the left of the box",
             (np.array([[[1.0, 0.0], [1.0, 0.0]]]), _b([0, 0, 4, 4]), (4, 4)),
             hint="masks are (M, M) with rows along y: row 0 is at y1, column 0 at x1; your "
                  "pasted mask looks transposed",
             also=((np.tile([True, True, True, False], (1, 4, 1)), bilinear),)),
        Case("the mask is stretched over the exact box [0.4, 0, 3.6, 1]",
             (np.array([[[0.0, 1.0]]]), _b([0.4, 0, 3.6, 1]), (1, 4)), {"threshold": 0.2},
             hint="map pixel centres into the exact box, (j + 0.5 - x1) / (x2 - x1) * M - 0.5: do "
                  "not round the box"),
        Case("a probability equal to the threshold is in the mask",
             (np.full((1, 1, 1), 0.5), _b([0, 0, 2, 2]), (2, 2)),
             hint="a pixel is in the mask when its probability is >= threshold (not >)"),
        Case("bilinear, at pixel centres: [0, 1] into 4 pixels reads [0, .25, .75, 1]",
             (np.array([[[0.0, 1.0]]]), _b([0, 0, 4, 1]), (1, 4)), {"threshold": 0.2},
             hint=bilinear),
        Case("a box partly outside the image: only the part inside is pasted",
             (np.ones((1, 2, 2)), _b([-1, -1, 2, 2]), (3, 3)),
             hint="clip the pixel range to the image: rows max(.., 0) to min(.., H); a negative "
                  "index would wrap around to the other side"),
        Case("several detections: (D, H, W) bool", (np.stack([np.ones((2, 2)), np.zeros((2, 2))]),
                                                    _b([0, 0, 2, 2], [1, 1, 3, 3]), (3, 4)),
             hint="one (H, W) bool mask per detection, False outside its box", shape_rule=True),
        Case("no detections: (0, H, W)", (np.zeros((0, 2, 2)), np.zeros((0, 4)), (3, 4)),
             hint="zero masks give np.zeros((0, H, W), dtype=bool)", shape_rule=True),
    ]  # fmt: skip


def _paste_random(rng):
    D, M = int(rng.integers(1, 4)), int(rng.integers(2, 6))
    H, W = int(rng.integers(4, 12)), int(rng.integers(4, 12))
    xy = rng.uniform(-2, W - 2, (D, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.5, W, (D, 2))], axis=1)
    return Case("random masks and boxes", (rng.random((D, M, M)), boxes, (H, W)),
                {"threshold": float(rng.choice([0.3, 0.5, 0.7]))},
                hint="pixel centres inside the box, bilinear read, >= threshold")  # fmt: skip


EXERCISES = [
    Exercise(
        "project_masks_on_boxes",
        "project_masks_on_boxes(gt_masks, boxes, matched_gt, size=28) -> (K, size, size)",
        "The mask head's training target of each RoI: its matched ground-truth mask, cropped to "
        "the RoI and resampled to size x size in the RoI's frame (row 0 at y1, column 0 at x1). "
        "gt_masks (G, H, W) 0/1 masks of one image; boxes (K, 4) RoIs x1, y1, x2, y2 in image "
        "pixels; matched_gt (K,) index of each RoI's mask. This is RoIAlign of the masks "
        "(torchvision: spatial_scale 1, sampling_ratio 0, aligned=False). Float values in [0, 1].",
        "rois = np.concatenate([matched_gt[:, None], boxes], axis=1) makes each RoI read its own "
        "mask as its 'image'; then roi_align(gt_masks[:, None], rois, size, 1.0, 0, False)[:, 0]",
        project_masks_on_boxes, _target_cases, _target_random,
        parameters=("gt_masks", "boxes", "matched_gt", "size"),
    ),
    Exercise(
        "paste_masks_in_image",
        "paste_masks_in_image(masks, boxes, image_size, threshold=0.5) -> (D, H, W) bool",
        "Each detection's M x M mask probabilities placed into an empty H x W image (Detectron2's "
        "pasting, continuous coordinates): pixel (i, j) is True when its centre (j + 0.5, i + 0.5) "
        "lies inside the box and the mask, read bilinearly (border rule of bilinear_interpolate) "
        "at that point's mask index ((j + 0.5 - x1) / (x2 - x1) * M - 0.5, likewise rows), is "
        ">= threshold. image_size = (H, W).",
        "for one detection: the pixel rows and columns whose centres lie in the box, their mask "
        "coordinates, then bilinear_interpolate(mask, ys[:, None], xs[None, :]) >= threshold",
        paste_masks_in_image, _paste_cases, _paste_random, atol=0,
        parameters=("masks", "boxes", "image_size", "threshold"),
    ),
]  # fmt: skip
