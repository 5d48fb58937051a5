"""The synthetic shapes data set (``shared/SHAPES.md``): circles, squares and triangles on a plain
background, generated from a seed, never shipped.

A seed fully determines a sample. The draws, in order, with ``rng = np.random.default_rng(seed)``:
the background colour; the number of objects; then per object: class, size ``s``, centre (retried
as a whole, up to 50 times, while its box overlaps an earlier box with IoU > 0.3), then its colour
(redrawn until it is at least 80 away from the background in RGB).

Rasterisation: pixel ``(i, j)`` belongs to a shape when its centre ``(x, y) = (j + 0.5, i + 0.5)``
lies inside the shape (closed), in the package's continuous pixel frame. Later objects are painted
over earlier ones; each mask holds the object's *visible* pixels; an object with fewer than 20
visible pixels is dropped. Its box is the tight box of its visible mask: columns ``3..10`` give
``x1 = 3, x2 = 11``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import box_iou

__all__ = ["CLASS_NAMES", "ShapesSpec", "make_shapes_sample", "ShapesDataset", "shape_mask"]

CLASS_NAMES = ("background", "circle", "square", "triangle")
TRAIN_SEEDS = (0, 10**6)  # [start, stop)
EVAL_SEED_START = 10**9


@dataclass(frozen=True)
class ShapesSpec:
    """The numbers of the specification; the defaults are ``SHAPES.md`` exactly. Larger images with
    more objects (for speed comparisons) change ``image_size`` and ``max_objects``."""

    image_size: int = 128
    min_objects: int = 1
    max_objects: int = 4
    min_size: int = 8
    max_size: int = 24
    min_colour_distance: float = 80.0
    max_overlap_iou: float = 0.3
    placement_tries: int = 50
    min_visible_pixels: int = 20


def _extent(label: int, s: float) -> tuple[float, float, float, float]:
    """Half-extents ``(left, top, right, bottom)`` of a shape around its centre."""
    if label == 3:  # upright equilateral triangle with circumradius s
        half_base = s * np.sqrt(3) / 2
        return half_base, s, half_base, s / 2
    return s, s, s, s


def shape_mask(label: int, cx: float, cy: float, s: float, height: int, width: int) -> np.ndarray:
    """``(H, W)`` bool: the pixels whose centres lie inside the shape (closed)."""
    y = np.arange(height)[:, None] + 0.5
    x = np.arange(width)[None, :] + 0.5
    if label == 1:
        return (x - cx) ** 2 + (y - cy) ** 2 <= s**2
    if label == 2:
        return (np.abs(x - cx) <= s) & (np.abs(y - cy) <= s)
    if label == 3:
        # inside the three edges: the base y <= cy + s/2 and the two sloping sides through the apex
        apex_y, half_base = cy - s, s * np.sqrt(3) / 2
        slope = half_base / (1.5 * s)  # half-width grows by this per unit of y below the apex
        return (y <= cy + s / 2) & (np.abs(x - cx) <= (y - apex_y) * slope)
    raise ValueError(f"label must be 1 (circle), 2 (square) or 3 (triangle); got {label}")


def _draw_colour(rng: np.random.Generator, background: np.ndarray, min_distance: float):
    while True:
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - background) >= min_distance:
            return colour


def make_shapes_sample(seed: int, spec: ShapesSpec = ShapesSpec()):
    """One image and its annotations, determined by ``seed``.

    Returns:
        ``(image, target)``: ``image`` ``(H, W, 3)`` uint8; ``target`` a dict with ``"boxes"`` ``(N, 4)``
        float32 (``x1, y1, x2, y2``, tight boxes of the visible masks), ``"labels"`` ``(N,)`` int64
        (1 circle, 2 square, 3 triangle) and ``"masks"`` ``(N, H, W)`` bool, torchvision's format.
    """
    rng = np.random.default_rng(seed)
    size = spec.image_size
    background = rng.integers(0, 256, 3)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = background
    owner = np.full((size, size), -1, np.int64)  # which object each pixel shows
    labels: list[int] = []
    placed: list[list[float]] = []
    for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
        for _try in range(spec.placement_tries):
            label = int(rng.integers(1, 4))
            s = int(rng.integers(spec.min_size, spec.max_size + 1))
            left, top, right, bottom = _extent(label, s)
            cx = rng.uniform(left, size - right)
            cy = rng.uniform(top, size - bottom)
            box = [cx - left, cy - top, cx + right, cy + bottom]
            if not placed or box_iou([box], placed).max() <= spec.max_overlap_iou:
                break
        else:
            continue  # no free place found: the object is dropped
        colour = _draw_colour(rng, background, spec.min_colour_distance)
        mask = shape_mask(label, cx, cy, s, size, size)
        image[mask] = colour
        owner[mask] = len(labels)
        labels.append(label)
        placed.append(box)
    masks = owner[None] == np.arange(len(labels))[:, None, None]  # (N, H, W) visible pixels
    keep = masks.sum(axis=(1, 2)) >= spec.min_visible_pixels
    masks = masks[keep]
    return image, {
        "boxes": masks_to_boxes(masks),
        "labels": np.asarray(labels, np.int64)[keep],
        "masks": masks,
    }


def masks_to_boxes(masks) -> np.ndarray:
    """Tight boxes of ``(N, H, W)`` bool masks, ``(N, 4)`` float32; an empty mask gives zeros."""
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):  # per object, whole-array work
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        if len(rows):
            boxes[k] = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    return boxes


class ShapesDataset:
    """Samples by index from a seed stream: ``"train"`` seeds ``0 .. 10^6 - 1``, ``"eval"`` seeds from
    ``10^9`` on, so the two never share an image.

    Args:
        split: ``"train"`` or ``"eval"``.
        size: number of samples (default: 10^6 for train, 200 for eval, the spec's figure).
        spec: the generator's numbers.
    """

    def __init__(
        self, split: str = "train", size: int | None = None, spec: ShapesSpec = ShapesSpec()
    ):
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval'; got {split!r}")
        default = TRAIN_SEEDS[1] if split == "train" else 200
        size = default if size is None else int(size)
        if not 0 <= size <= (TRAIN_SEEDS[1] if split == "train" else 10**9):
            raise ValueError(f"size must be in [0, {default}] for the {split} split; got {size}")
        self.split, self.size, self.spec = split, size, spec

    @property
    def seeds(self) -> range:
        start = TRAIN_SEEDS[0] if self.split == "train" else EVAL_SEED_START
        return range(start, start + self.size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} samples")
        return make_shapes_sample(self.seeds[index], self.spec)
