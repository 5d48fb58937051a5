"""Box regression targets: how a proposal must move and stretch to become a ground-truth box.

For a proposal ``P`` (centre ``px, py``, size ``pw, ph``) and a target ``G``, R-CNN's parametrisation::

    dx = wx (gx - px) / pw        dw = ww log(gw / pw)
    dy = wy (gy - py) / ph        dh = wh log(gh / ph)

Shifts are relative to the proposal's size and scales are logarithmic, so the targets do not depend on
the image's scale. The weights ``(wx, wy, ww, wh)`` only rescale the targets to a comfortable range:
``(1, 1, 1, 1)`` in the RPN and ``(10, 10, 5, 5)`` in the box head, torchvision's defaults. ``decode``
clamps ``dw, dh`` at ``log(1000 / 16)`` so that a wild prediction cannot overflow ``exp``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .conventions import as_boxes, check_finite, check_real

__all__ = ["BoxCoder"]

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _centres_and_sizes(b: np.ndarray):
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h


def _is_per_image_list(x) -> bool:
    """A list with one ``(L_i, 4)`` array per image, as opposed to a nested list of numbers."""
    return isinstance(x, (list, tuple)) and all(isinstance(e, np.ndarray) for e in x)


class BoxCoder:
    """Encode boxes as deltas relative to reference boxes and decode them back (torchvision's API).

    Args:
        weights: ``(wx, wy, ww, wh)``.
        bbox_xform_clip: upper clamp of ``dw, dh`` in ``decode``; default ``log(1000 / 16)``. A real
            number, not NaN (``inf`` turns the clamp off).
    """

    def __init__(self, weights: Sequence[float], bbox_xform_clip: float = BBOX_XFORM_CLIP):
        try:
            weights = tuple(weights)
        except TypeError:
            raise ValueError(f"weights must be four positive numbers; got {weights!r}") from None
        ok = len(weights) == 4 and all(
            isinstance(w, numbers.Real) and not isinstance(w, (bool, np.bool_)) for w in weights
        )
        if not ok or not all(0 < float(w) < math.inf for w in weights):
            raise ValueError(f"weights must be four finite positive numbers; got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        # NaN would decode every box to NaN; +inf means no clamp (exp may then overflow to inf)
        self.bbox_xform_clip = check_real(bbox_xform_clip, "bbox_xform_clip")

    def __repr__(self) -> str:
        return f"BoxCoder(weights={self.weights}, bbox_xform_clip={self.bbox_xform_clip:.4f})"

    def encode_single(self, reference_boxes, proposals) -> np.ndarray:
        """Deltas that turn each proposal into its reference (ground-truth) box.

        Args:
            reference_boxes: ``(N, 4)`` target boxes ``x1, y1, x2, y2``, positive width and height.
            proposals: ``(N, 4)`` boxes the deltas are relative to, positive width and height.

        Returns:
            ``(N, 4)`` deltas ``dx, dy, dw, dh`` (already multiplied by the weights).
        """
        g = as_boxes(reference_boxes, "reference_boxes")
        p = as_boxes(proposals, "proposals")
        if g.shape != p.shape:
            raise ValueError(
                f"reference_boxes and proposals must pair up; got {g.shape} and {p.shape}"
            )
        for name, b in (("reference_boxes", g), ("proposals", p)):
            if np.any(b[:, 2] <= b[:, 0]) or np.any(b[:, 3] <= b[:, 1]):
                raise ValueError(f"{name} must have positive width and height to be encoded")
        dtype = np.result_type(g.dtype, p.dtype)
        gx, gy, gw, gh = _centres_and_sizes(g.astype(dtype, copy=False))
        px, py, pw, ph = _centres_and_sizes(p.astype(dtype, copy=False))
        wx, wy, ww, wh = self.weights
        deltas = np.stack(
            [wx * (gx - px) / pw, wy * (gy - py) / ph, ww * np.log(gw / pw), wh * np.log(gh / ph)],
            axis=1,
        )
        return deltas.astype(dtype, copy=False)

    def decode_single(self, rel_codes, boxes) -> np.ndarray:
        """Apply deltas to boxes.

        Args:
            rel_codes: ``(N, 4 * C)`` deltas, ``C`` sets per box (e.g. one per class).
            boxes: ``(N, 4)`` reference boxes ``x1, y1, x2, y2``.

        Returns:
            ``(N, 4 * C)`` decoded boxes ``x1, y1, x2, y2`` (not clipped to any image).
        """
        b = as_boxes(boxes)
        d = np.asarray(rel_codes)
        if d.ndim != 2 or d.shape[0] != b.shape[0] or d.shape[1] % 4 != 0:
            raise ValueError(
                f"rel_codes must have shape ({b.shape[0]}, 4 * C) to go with boxes {b.shape}; "
                f"got {d.shape}"
            )
        check_finite(d, "rel_codes")
        dtype = np.result_type(b.dtype, d.dtype) if np.issubdtype(d.dtype, np.floating) else b.dtype
        d = d.astype(dtype, copy=False)
        px, py, pw, ph = (v[:, None] for v in _centres_and_sizes(b.astype(dtype, copy=False)))
        wx, wy, ww, wh = self.weights
        dx, dy = d[:, 0::4] / wx, d[:, 1::4] / wy
        dw = np.minimum(d[:, 2::4] / ww, self.bbox_xform_clip)
        dh = np.minimum(d[:, 3::4] / wh, self.bbox_xform_clip)
        cx, cy = dx * pw + px, dy * ph + py  # (N, C)
        half_w, half_h = 0.5 * np.exp(dw) * pw, 0.5 * np.exp(dh) * ph
        out = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=2)  # (N, C, 4)
        return out.reshape(d.shape).astype(dtype, copy=False)

    def encode(self, reference_boxes, proposals):
        """Like :meth:`encode_single`; given lists (one array per image) it returns a list."""
        if _is_per_image_list(reference_boxes):
            if not _is_per_image_list(proposals) or len(proposals) != len(reference_boxes):
                raise ValueError("reference_boxes and proposals must be lists of the same length")
            return [
                self.encode_single(g, p) for g, p in zip(reference_boxes, proposals, strict=True)
            ]
        return self.encode_single(reference_boxes, proposals)

    def decode(self, rel_codes, boxes):
        """Like :meth:`decode_single`; given a list of boxes per image, as torchvision does, the boxes
        are concatenated and the result has shape ``(sum N_i, C, 4)``."""
        if _is_per_image_list(boxes):
            concat = (
                np.concatenate([as_boxes(b) for b in boxes]) if boxes else np.zeros((0, 4), "f4")
            )
            d = np.asarray(rel_codes).reshape(len(concat), -1)
            return self.decode_single(d, concat).reshape(len(concat), -1, 4)
        return self.decode_single(rel_codes, boxes)
