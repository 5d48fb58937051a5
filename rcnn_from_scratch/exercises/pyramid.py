"""Exercise on the feature pyramid: which level a RoI is read from (the FPN paper's equation 1)."""

from __future__ import annotations

import numpy as np

from ..roi.multiscale import level_of_boxes
from .checker import Case, Exercise

__all__ = ["EXERCISES"]


def _sq(*sides):
    return np.array([[10, 10, 10 + s, 10 + s] for s in sides], dtype=np.float64).reshape(-1, 4)


def _level_cases():
    return [
        Case("a 224 x 224 box sits on level k0 = 4: index 2 when k_min = 2", (_sq(224), 2, 5),
             hint="return the level INDEX k - k_min (0 for the finest map), not k itself",
             also=((np.array([3]), "use sqrt(w * h), the square root of the AREA, not the area "
                                   "itself"),)),
        Case("halving the side moves one level finer: 112 -> 1, 448 -> 3", (_sq(112, 448), 2, 5),
             hint="k = floor(k0 + log2(sqrt(w h) / 224))",
             also=((np.array([1, 2]), "log2, not the natural log: each halving of the side is one "
                                      "level"),)),
        Case("a side of 400 is still level 4 (floor, not round)", (_sq(400), 2, 5),
             hint="floor(k0 + log2(sqrt(w h) / 224)): 4.84 is level 4; do not round"),
        Case("a tiny box is clamped to the finest level", (_sq(5), 2, 5),
             hint="clamp k to [k_min, k_max] before subtracting k_min"),
        Case("a huge box is clamped to the coarsest level", (_sq(2000), 2, 5),
             hint="clamp k to [k_min, k_max] before subtracting k_min"),
        Case("the scale is sqrt(w h): a 112 x 448 box is on level 4",
             (np.array([[0.0, 0.0, 112.0, 448.0]]), 2, 5),
             hint="use sqrt(w * h), the square root of the AREA (not the width, the longer side, "
                  "or the area itself)"),
        Case("a side of 223 is on level 3 (width x2 - x1)", (_sq(223), 2, 5),
             hint="width is x2 - x1, no +1"),
        Case("a side a hair below 224 (float rounding) still lands on level 4: eps",
             (np.array([[0.0, 0.0, 223.99994, 223.99994]]), 2, 5),
             hint="add eps = 1e-6 after the log2 and before the floor, as torchvision's "
                  "LevelMapper does, so that rounding just below a boundary does not drop a level"),
        Case("a zero-area box lands on k_min", (np.array([[3.0, 3.0, 3.0, 9.0]]), 2, 5),
             hint="log2(0) = -inf; np.clip(-inf, k_min, k_max) is k_min (silence the warning with "
                  "np.errstate(divide='ignore'))"),
        Case("other pyramids: k_min 3, k_max 6, canonical_scale 100, canonical_level 5",
             (_sq(20, 100, 210, 900), 3, 6), {"canonical_scale": 100, "canonical_level": 5},
             hint="use the arguments canonical_scale and canonical_level instead of 224 and 4"),
        Case("integer indices, shape (K,)", (_sq(50, 300), 2, 5),
             hint="return an int64 array of shape (K,)", shape_rule=True),
        Case("no boxes: shape (0,)", (np.zeros((0, 4)), 2, 5),
             hint="an empty (0, 4) input gives an empty (0,) int array", shape_rule=True),
    ]  # fmt: skip


def _level_random(rng):
    K = int(rng.integers(1, 8))
    xy = rng.uniform(0, 100, (K, 2))
    wh = np.exp(rng.uniform(np.log(4), np.log(1500), (K, 2)))
    return Case("random boxes", (np.concatenate([xy, xy + wh], axis=1), 2, 5),
                hint="floor(4 + log2(sqrt(w h) / 224) + 1e-6), clamped, minus k_min")  # fmt: skip


EXERCISES = [
    Exercise(
        "level_of_boxes",
        "level_of_boxes(boxes, k_min, k_max, canonical_scale=224, canonical_level=4, eps=1e-6) "
        "-> (K,) int64",
        "The FPN level rule (torchvision's LevelMapper): boxes (K, 4) x1, y1, x2, y2 in image "
        "pixels; k = floor(canonical_level + log2(sqrt(w h) / canonical_scale) + eps), clamped "
        "to [k_min, k_max]; return the index k - k_min (0 = the finest map).",
        "w = boxes[:, 2] - boxes[:, 0]; s = np.sqrt(w * h); k = np.floor(4 + np.log2(s / 224) + "
        "eps); then np.clip and subtract k_min",
        level_of_boxes, _level_cases, _level_random,
        parameters=("boxes", "k_min", "k_max", "canonical_scale", "canonical_level", "eps"),
    ),
]  # fmt: skip
