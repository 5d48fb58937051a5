"""The synthetic shapes data set (``shared/SHAPES.md``): circles, squares and triangles on a plain
background, generated from a seed, never shipped.

A seed fully determines a sample. The draws, in order, with ``rng = np.random.default_rng(seed)``:
the background colour (each channel an integer in ``[0, 255]``); the number of objects (integer,
uniform in ``[1, 4]``); then per object: class (uniform in 1..3), integer size ``s`` (uniform in
``[8, 24]``) and centre (uniform over the positions that keep the whole shape inside the image), all
three redrawn together, up to 50 times, while the shape's box has IoU > 0.3 with the box of an object
already placed (after 50 tries the object is dropped); then its colour (uniform RGB, redrawn until
its Euclidean distance to the background is at least 80).

Geometry, in the package's continuous pixel frame (``x`` right, ``y`` down; pixel ``(i, j)`` is the
square ``[j, j + 1) x [i, i + 1)``), with centre ``(cx, cy)``, which is continuous:

- circle (1): the closed disc ``(x - cx)^2 + (y - cy)^2 <= s^2``;
- square (2): ``|x - cx| <= s`` and ``|y - cy| <= s`` (half side ``s``);
- triangle (3): the closed upright equilateral triangle with circumradius ``s`` and centroid
  ``(cx, cy)``: apex ``(cx, cy - s)``, base corners ``(cx -+ s sqrt(3) / 2, cy + s / 2)``, i.e.
  ``y <= cy + s / 2`` and ``|x - cx| <= (y - cy + s) / sqrt(3)``.

The shape's box (for the overlap rule and for keeping it inside the image) is its exact geometric
box: ``cx -+ s, cy -+ s`` for the circle and the square, ``cx -+ s sqrt(3) / 2, cy - s .. cy + s / 2``
for the triangle.

Rasterisation samples pixel centres: pixel ``(i, j)`` belongs to a shape when its centre
``(x, y) = (j + 0.5, i + 0.5)`` satisfies the inequalities above (computed on whole coordinate grids,
no loop over pixels). Later objects are painted over earlier ones; each mask holds the object's
*visible* pixels; an object with fewer than 20 visible pixels is removed from the annotations (its
few pixels stay painted). Its box is the tight box of its visible mask: columns ``3..10`` give
``x1 = 3, x2 = 11``.

The multi-scale variant (``variant="multiscale"``, :data:`MULTISCALE`, for the feature pyramid):
256 x 256 images, 2 to 8 objects, size ``s = round(exp(u))`` with ``u`` uniform in
``[log 4, log 80]`` (log-uniform: objects 8 to 160 pixels across, about half of them *small* in
COCO's sense, mask area below 32^2), and an object with fewer than 16 visible pixels removed. The
draws are the same, in the same order; then the placed objects are painted by **decreasing** ``s``
(a stable sort: equal sizes keep their drawing order), so a small object lies on top of a large one
instead of under it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ..boxes import box_iou

__all__ = [
    "CLASS_NAMES",
    "ShapesSpec",
    "MULTISCALE",
    "VARIANTS",
    "make_shapes_sample",
    "ShapesDataset",
    "Shape",
    "draw_layout",
    "render",
    "shape_mask",
    "masks_to_tight_boxes",
]

CLASS_NAMES = ("background", "circle", "square", "triangle")
TRAIN_SEEDS = (0, 10**6)  # [start, stop)
EVAL_SEED_START = 10**9
EVAL_SIZE = 200  # SHAPES.md: evaluation uses 200 images unless a figure says otherwise


@dataclass(frozen=True)
class ShapesSpec:
    """The numbers of the specification; the defaults are ``SHAPES.md`` exactly. Larger images with
    more objects (for speed comparisons) change ``image_size`` and ``max_objects``.

    Raises:
        ValueError: a size that cannot hold the largest shape (``image_size < 2 * max_size``), or a
            range whose ends are the wrong way round.
    """

    image_size: int = 128
    min_objects: int = 1
    max_objects: int = 4
    min_size: int = 8
    max_size: int = 24
    min_colour_distance: float = 80.0
    max_overlap_iou: float = 0.3
    placement_tries: int = 50
    min_visible_pixels: int = 20
    size_distribution: str = "uniform"  # or "log_uniform" (the multi-scale variant)
    paint_order: str = "drawn"  # or "decreasing_size" (the multi-scale variant)

    def __post_init__(self):
        if self.size_distribution not in ("uniform", "log_uniform"):
            raise ValueError(
                f"size_distribution must be 'uniform' or 'log_uniform'; got {self.size_distribution!r}"
            )
        if self.paint_order not in ("drawn", "decreasing_size"):
            raise ValueError(
                f"paint_order must be 'drawn' or 'decreasing_size'; got {self.paint_order!r}"
            )
        if not 1 <= self.min_size <= self.max_size:
            raise ValueError(f"sizes must satisfy 1 <= min_size <= max_size; got {self}")
        if self.image_size < 2 * self.max_size:
            raise ValueError(
                f"image_size must be at least 2 * max_size = {2 * self.max_size} so that every "
                f"shape fits; got {self.image_size}"
            )
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"max_objects must be >= min_objects = {self.min_objects}; got {self.max_objects}"
            )
        if not 0 <= self.min_colour_distance <= 255 * np.sqrt(3) / 2:
            raise ValueError(f"min_colour_distance must lie in [0, 220]; got {self}")
        if self.placement_tries < 1:
            raise ValueError(f"placement_tries must be >= 1; got {self.placement_tries}")


# SHAPES.md's multi-scale variant, for the feature pyramid
MULTISCALE = ShapesSpec(
    image_size=256, min_objects=2, max_objects=8, min_size=4, max_size=80,
    min_visible_pixels=16, size_distribution="log_uniform", paint_order="decreasing_size",
)  # fmt: skip
VARIANTS = {"standard": ShapesSpec(), "multiscale": MULTISCALE}


def _spec_of(variant: str, spec: ShapesSpec | None) -> ShapesSpec:
    """The spec a caller asked for: ``spec`` itself, or the named variant's."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}; got {variant!r}")
    if spec is None:
        return VARIANTS[variant]
    if not isinstance(spec, ShapesSpec):
        raise ValueError(f"spec must be a ShapesSpec; got {type(spec).__name__}")
    if variant != "standard" and spec != VARIANTS[variant]:
        raise ValueError("give either variant or spec, not both")
    return spec


def _draw_size(rng: np.random.Generator, spec: ShapesSpec) -> int:
    """``s``: an integer uniform in ``[min, max]``, or ``round(exp(u))``, ``u`` uniform in logs."""
    if spec.size_distribution == "uniform":
        return int(rng.integers(spec.min_size, spec.max_size + 1))
    u = rng.uniform(np.log(spec.min_size), np.log(spec.max_size))
    return int(np.clip(np.rint(np.exp(u)), spec.min_size, spec.max_size))


def _with(spec: ShapesSpec, image_size: int | None, max_objects: int | None) -> ShapesSpec:
    """``spec`` with the two speed-comparison knobs overridden where given."""
    changes = {}
    if image_size is not None:
        changes["image_size"] = int(image_size)
    if max_objects is not None:
        changes["max_objects"] = int(max_objects)
    return replace(spec, **changes) if changes else spec


def _extent(label: int, s: float) -> tuple[float, float, float, float]:
    """Distances ``(left, top, right, bottom)`` from a shape's centre to the sides of its box."""
    if label == 3:  # upright equilateral triangle with circumradius s, centred on its centroid
        half_base = s * np.sqrt(3) / 2
        return half_base, s, half_base, s / 2
    return s, s, s, s


def shape_mask(label: int, cx: float, cy: float, s: float, height: int, width: int) -> np.ndarray:
    """Rasterise one shape by pixel-centre sampling (the rules in the module docstring).

    Args:
        label: 1 circle, 2 square, 3 triangle.
        cx, cy: centre in continuous pixel coordinates (the triangle's centroid).
        s: radius, half side or circumradius, in pixels.
        height, width: the image size.

    Returns:
        ``(H, W)`` bool: pixel ``(i, j)`` is True when ``(j + 0.5, i + 0.5)`` lies in the closed shape.
    """
    y = np.arange(height)[:, None] + 0.5  # (H, 1) pixel-centre rows
    x = np.arange(width)[None, :] + 0.5  # (1, W) pixel-centre columns
    if label == 1:
        return (x - cx) ** 2 + (y - cy) ** 2 <= s**2
    if label == 2:
        return (np.abs(x - cx) <= s) & (np.abs(y - cy) <= s)
    if label == 3:
        # below the apex (cx, cy - s) the half-width grows by 1/sqrt(3) per unit of y, down to the
        # base at cy + s/2, where it is s sqrt(3)/2
        return (y <= cy + s / 2) & (np.abs(x - cx) <= (y - cy + s) / np.sqrt(3))
    raise ValueError(f"label must be 1 (circle), 2 (square) or 3 (triangle); got {label}")


def _draw_colour(rng: np.random.Generator, background: np.ndarray, min_distance: float):
    while True:  # the far side of the RGB cube is always at least 220 away, so this ends
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - background) >= min_distance:
            return colour


class Shape(NamedTuple):
    """One drawn object: class, centre ``(cx, cy)`` (continuous pixels), size ``s``, RGB colour."""

    label: int
    cx: float
    cy: float
    s: int
    colour: tuple[int, int, int]

    @property
    def box(self) -> list[float]:
        """The shape's exact geometric box ``[x1, y1, x2, y2]`` (used by the overlap rule)."""
        left, top, right, bottom = _extent(self.label, self.s)
        return [self.cx - left, self.cy - top, self.cx + right, self.cy + bottom]


def draw_layout(seed: int, spec: ShapesSpec = ShapesSpec()):
    """The random half of the generator: the background colour and the objects, in painting order
    (the drawing order, or by decreasing size for ``spec.paint_order == "decreasing_size"``).

    Returns:
        ``(background, shapes)``: background ``(3,)`` int64 RGB and a list of :class:`Shape` (objects
        that found no free place are already dropped; hidden ones are not, :func:`render` does that).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    rng = np.random.default_rng(int(seed))
    size = spec.image_size
    background = rng.integers(0, 256, 3)
    shapes: list[Shape] = []
    for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
        for _try in range(spec.placement_tries):
            label = int(rng.integers(1, 4))
            s = _draw_size(rng, spec)
            left, top, right, bottom = _extent(label, s)
            cx = rng.uniform(left, size - right)
            cy = rng.uniform(top, size - bottom)
            box = [cx - left, cy - top, cx + right, cy + bottom]
            if not shapes or box_iou([box], [p.box for p in shapes]).max() <= spec.max_overlap_iou:
                break
        else:
            continue  # no free place found: the object is dropped
        colour = _draw_colour(rng, background, spec.min_colour_distance)
        shapes.append(Shape(label, float(cx), float(cy), s, tuple(int(c) for c in colour)))
    if spec.paint_order == "decreasing_size":  # large first: small objects end up on top
        shapes = sorted(shapes, key=lambda shape: -shape.s)  # stable: ties keep drawing order
    return background, shapes


def render(background, shapes, image_size: int, min_visible_pixels: int = 20):
    """The deterministic half: paint ``shapes`` in order over ``background`` and annotate them.

    Returns:
        ``(image, target)`` as :func:`make_shapes_sample` describes; an object with fewer than
        ``min_visible_pixels`` visible pixels is left out of ``target``.
    """
    size = int(image_size)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = np.asarray(background, np.uint8)
    owner = np.full((size, size), -1, np.int64)  # which object each pixel shows
    for k, shape in enumerate(shapes):
        mask = shape_mask(shape.label, shape.cx, shape.cy, shape.s, size, size)
        image[mask] = shape.colour
        owner[mask] = k  # painting order: a later object covers an earlier one
    masks = owner[None] == np.arange(len(shapes))[:, None, None]  # (N, H, W) visible pixels
    keep = masks.sum(axis=(1, 2)) >= min_visible_pixels
    masks = masks[keep]
    labels = np.array([shape.label for shape in shapes], np.int64)[keep]
    return image, {"boxes": masks_to_tight_boxes(masks), "labels": labels, "masks": masks}


def make_shapes_sample(
    seed: int,
    image_size: int | None = None,
    max_objects: int | None = None,
    spec: ShapesSpec | None = None,
    variant: str = "standard",
):
    """One image and its annotations, determined by ``seed`` (see the module docstring).

    Args:
        seed: an integer >= 0, fed to ``np.random.default_rng``.
        image_size: side of the square image; default ``spec.image_size`` (128, the spec's).
        max_objects: objects drawn at most; default ``spec.max_objects`` (4, the spec's).
        spec: every other number of the generator; default the variant's (``SHAPES.md`` exactly).
        variant: ``"standard"`` (128 x 128, 1-4 objects of 16-48 pixels) or ``"multiscale"``
            (256 x 256, 2-8 objects of 8-160 pixels painted large first: :data:`MULTISCALE`).

    Returns:
        ``(image, target)``: ``image`` ``(H, W, 3)`` uint8; ``target`` a dict with ``"boxes"``
        ``(N, 4)`` float32 (``x1, y1, x2, y2``, tight boxes of the visible masks), ``"labels"``
        ``(N,)`` int64 (1 circle, 2 square, 3 triangle) and ``"masks"`` ``(N, H, W)`` bool, the
        visible pixels (torchvision's target format). ``N`` may be 0 when every object is dropped.

    Raises:
        ValueError: a negative or non-integer seed, an impossible size (see :class:`ShapesSpec`),
            an unknown variant, or both a variant and a different spec.
    """
    spec = _with(_spec_of(variant, spec), image_size, max_objects)
    background, shapes = draw_layout(seed, spec)
    return render(background, shapes, spec.image_size, spec.min_visible_pixels)


def masks_to_tight_boxes(masks) -> np.ndarray:
    """Tight boxes of ``(N, H, W)`` bool masks in continuous pixel coordinates: ``(N, 4)`` float32.

    Columns ``3..10`` give ``x1 = 3, x2 = 11`` (the box covers the pixels, edges included). Note that
    ``torchvision.ops.masks_to_boxes`` returns the last index instead (``x2 = 10``). An empty mask gives
    ``[0, 0, 0, 0]``.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (N, H, W); got shape {masks.shape}")
    rows, cols = masks.any(axis=2), masks.any(axis=1)  # (N, H), (N, W)
    y1, x1 = rows.argmax(axis=1), cols.argmax(axis=1)
    y2 = rows.shape[1] - rows[:, ::-1].argmax(axis=1)
    x2 = cols.shape[1] - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)  # (N, 4)
    boxes[~rows.any(axis=1)] = 0
    return boxes


class ShapesDataset:
    """Samples by index from a seed stream: ``"train"`` seeds ``0 .. 10^6 - 1``, ``"eval"`` seeds from
    ``10^9`` on, so the two never share an image. Sample ``i`` is ``make_shapes_sample(seeds[i])``.

    Args:
        split: ``"train"`` or ``"eval"``.
        size: number of samples (default: 10^6 for train, 200 for eval, the spec's figure).
        image_size, max_objects: as in :func:`make_shapes_sample` (default: the spec's 128 and 4).
        spec: the generator's other numbers (default: the variant's).
        variant: ``"standard"`` or ``"multiscale"`` (:data:`MULTISCALE`), as in
            :func:`make_shapes_sample`.
    """

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        image_size: int | None = None,
        max_objects: int | None = None,
        spec: ShapesSpec | None = None,
        variant: str = "standard",
    ):
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval'; got {split!r}")
        limit = TRAIN_SEEDS[1] - TRAIN_SEEDS[0] if split == "train" else EVAL_SEED_START
        size = (limit if split == "train" else EVAL_SIZE) if size is None else int(size)
        if not 0 <= size <= limit:
            raise ValueError(f"size must be in [0, {limit}] for the {split} split; got {size}")
        self.split, self.size = split, size
        self.spec = _with(_spec_of(variant, spec), image_size, max_objects)

    @property
    def seeds(self) -> range:
        """The seeds of the samples, in index order."""
        start = TRAIN_SEEDS[0] if self.split == "train" else EVAL_SEED_START
        return range(start, start + self.size)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer; got {type(index).__name__}")
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} samples")
        return make_shapes_sample(self.seeds[int(index)], spec=self.spec)

    def __repr__(self) -> str:
        return f"ShapesDataset(split={self.split!r}, size={self.size}, spec={self.spec})"
