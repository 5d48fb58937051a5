"""Anchor boxes: the reference boxes the Region Proposal Network classifies and refines.

At every cell of a feature map of stride ``s`` sit ``A = len(sizes) * len(aspect_ratios)`` anchors.
Torchvision's semantics, so that anchors carry over 1:1:

* aspect ratio ``r`` is **height / width** (d2l uses width / height): ``h = sqrt(r)``, ``w = 1 / h``;
* base anchors ``round([-w, -h, w, h] * size / 2)`` are centred on 0, ordered ratio-major
  (for each ratio, every size);
* they are shifted by ``arange(grid) * stride``: anchor centres sit on each cell's **top-left corner**,
  not its centre; the stride is ``image_size // grid_size`` per axis;
* all anchors are listed location by location (row-major over the grid), ``A`` per location, so the
  RPN head's ``(A, Hf, Wf)`` outputs line up after a transpose to ``(Hf, Wf, A)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..conventions import check_allocation, check_int, check_positive_finite

__all__ = ["AnchorGenerator"]


class AnchorGenerator:
    """Anchors for one or more feature maps (one tuple of sizes and of ratios per map).

    Args:
        sizes: e.g. ``((16, 32, 64),)``: anchor sizes (square root of the area) in image pixels.
        aspect_ratios: e.g. ``((0.5, 1.0, 2.0),)``: heights over widths.

    Every size must be a number in ``(0, 1e8]`` and every ratio one in ``[1e-4, 1e4]``, and every map
    needs at least one of each (``ValueError`` otherwise: a negative size would give boxes with
    ``x2 < x1``, a ratio of 0, inf or NaN, or a size beyond float32, infinite or NaN anchors).
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]] = ((128, 256, 512),),
        aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
    ):
        for name, value in (("sizes", sizes), ("aspect_ratios", aspect_ratios)):
            if not isinstance(value, (list, tuple)) or len(value) == 0:
                raise ValueError(
                    f"{name} must be a non-empty tuple (one entry per map); got {value!r}"
                )
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)  # torchvision also accepts one size per map
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (tuple(aspect_ratios),) * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError("sizes and aspect_ratios need one entry per feature map")
        self.sizes = _positive_groups(sizes, "sizes")
        self.aspect_ratios = _positive_groups(aspect_ratios, "aspect_ratios")
        self.cell_anchors = [
            self.generate_anchors(s, r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)
        ]

    @staticmethod
    def generate_anchors(scales: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
        """Base anchors centred on 0: ``(len(ratios) * len(scales), 4)`` float32, ratio-major."""
        s = np.asarray(scales, dtype=np.float32)
        r = np.asarray(aspect_ratios, dtype=np.float32)
        h_ratios = np.sqrt(r)
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * s[None, :]).ravel()
        hs = (h_ratios[:, None] * s[None, :]).ravel()
        return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / 2).astype(np.float32)

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)]

    def grid_anchors(self, grid_sizes, strides) -> list[np.ndarray]:
        """Anchors of each feature map: ``(Hf * Wf * A, 4)`` per map, location-major."""
        out = []
        for (gh, gw), (sh, sw), base in zip(grid_sizes, strides, self.cell_anchors, strict=True):
            shift_y, shift_x = np.meshgrid(
                np.arange(gh, dtype=np.float32) * sh,
                np.arange(gw, dtype=np.float32) * sw,
                indexing="ij",
            )
            shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=-1).reshape(-1, 1, 4)
            out.append((shifts + base[None]).reshape(-1, 4))  # (Hf * Wf * A, 4)
        return out

    def __call__(self, image_size, feature_sizes) -> np.ndarray:
        """All anchors of one image.

        Args:
            image_size: ``(H, W)`` of the (padded) input image.
            feature_sizes: ``[(Hf, Wf), ...]``, one per feature map, in the order of ``sizes``.

        Returns:
            ``(sum Hf * Wf * A, 4)`` float32 anchors ``x1, y1, x2, y2`` in image pixels (not clipped;
            torchvision's ``forward`` returns the same array once per image of the batch).
        """
        H, W = _pair(image_size, "image_size")
        grids = [_pair(g, f"feature_sizes[{i}]") for i, g in enumerate(feature_sizes)]
        if len(grids) != len(self.cell_anchors):
            raise ValueError(
                f"expected {len(self.cell_anchors)} feature map size(s), got {len(grids)}"
            )
        for i, (gh, gw) in enumerate(grids):
            if gh > H or gw > W:
                raise ValueError(
                    f"feature_sizes[{i}] {(gh, gw)} is larger than image_size {(H, W)}: its stride "
                    "would be 0"
                )
        total = sum(gh * gw * len(a) for (gh, gw), a in zip(grids, self.cell_anchors, strict=True))
        check_allocation(4.0 * total, 4, f"{total} anchors (feature_sizes {grids})")
        strides = [(H // gh, W // gw) for gh, gw in grids]
        return np.concatenate(self.grid_anchors(grids, strides))


# anchors are float32: these bounds keep every anchor finite (a 10**4 : 1 box is already absurd)
_BOUNDS = {"sizes": (0.0, 1e8), "aspect_ratios": (1e-4, 1e4)}


def _positive_groups(groups, name: str) -> tuple[tuple[float, ...], ...]:
    """One non-empty tuple of finite positive numbers per feature map, within ``_BOUNDS``."""
    low, high = _BOUNDS[name]
    out = []
    for i, group in enumerate(groups):
        if not isinstance(group, (list, tuple)) or len(group) == 0:
            raise ValueError(f"{name}[{i}] must be a non-empty tuple of numbers; got {group!r}")
        values = tuple(check_positive_finite(v, f"{name}[{i}][{j}]") for j, v in enumerate(group))
        for j, v in enumerate(values):
            if not low <= v <= high:
                raise ValueError(f"{name}[{i}][{j}] must lie in [{low:g}, {high:g}]; got {v!r}")
        out.append(values)
    return tuple(out)


def _pair(size, name: str) -> tuple[int, int]:
    """``(h, w)``, two integers >= 1 (a feature map of size 0 has no anchors to place)."""
    try:
        h, w = size
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (height, width); got {size!r}") from None
    return check_int(h, f"{name}[0]", low=1), check_int(w, f"{name}[1]", low=1)
