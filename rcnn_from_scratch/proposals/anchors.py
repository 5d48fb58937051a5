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

__all__ = ["AnchorGenerator"]


class AnchorGenerator:
    """Anchors for one or more feature maps (one tuple of sizes and of ratios per map).

    Args:
        sizes: e.g. ``((16, 32, 64),)``: anchor sizes (square root of the area) in image pixels.
        aspect_ratios: e.g. ``((0.5, 1.0, 2.0),)``: heights over widths.
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]] = ((128, 256, 512),),
        aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
    ):
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)  # torchvision also accepts one size per map
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (tuple(aspect_ratios),) * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError("sizes and aspect_ratios need one entry per feature map")
        self.sizes = tuple(tuple(float(s) for s in group) for group in sizes)
        self.aspect_ratios = tuple(tuple(float(r) for r in group) for group in aspect_ratios)
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
        H, W = (int(v) for v in image_size)
        grids = [tuple(int(v) for v in g) for g in feature_sizes]
        if len(grids) != len(self.cell_anchors):
            raise ValueError(
                f"expected {len(self.cell_anchors)} feature map size(s), got {len(grids)}"
            )
        strides = [(H // gh, W // gw) for gh, gw in grids]
        return np.concatenate(self.grid_anchors(grids, strides))
