"""From head outputs to what a user gets: detections per image, and masks pasted into the image.

Detections follow torchvision's ``postprocess_detections``: softmax over classes, one decoded box per
class, clip, drop the background column, drop scores <= ``score_thresh``, drop tiny boxes, NMS per
class, keep the best ``detections_per_img``.

Masks are pasted the way Detectron2 does it, in our continuous pixel frame: image pixel ``(i, j)``
belongs to a detection's mask when its centre ``(j + 0.5, i + 0.5)`` lies in the box and the ``M x M``
mask, read bilinearly at the corresponding point, is at least ``threshold`` (0.5, the paper's value).
"""

from __future__ import annotations

import numpy as np

from .bilinear import linear_interpolation_weights
from .box_coder import BoxCoder
from .boxes import batched_nms, clip_boxes_to_image, remove_small_boxes
from .conventions import as_boxes

__all__ = ["softmax", "postprocess_detections", "paste_masks_in_image"]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (the maximum is subtracted before ``exp``)."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def postprocess_detections(
    class_logits,
    box_deltas,
    proposals,
    image_size,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
    box_coder: BoxCoder | None = None,
) -> dict[str, np.ndarray]:
    """Detections of one image from the box head's outputs.

    Args:
        class_logits: ``(R, K + 1)`` class scores before softmax, background first.
        box_deltas: ``(R, 4 * (K + 1))`` class-specific deltas, or ``(R, 4)`` class-agnostic.
        proposals: ``(R, 4)`` the RoIs the head saw, image pixels.
        image_size: ``(H, W)``.

    Returns:
        ``{"boxes": (D, 4) float32, "labels": (D,) int64, "scores": (D,) float32}``, best first.
    """
    logits = np.asarray(class_logits, dtype=np.float32)
    props = as_boxes(proposals, "proposals", dtype=np.float32)
    R, classes = logits.shape if logits.ndim == 2 else (-1, -1)
    if R != len(props):
        raise ValueError(f"class_logits must have shape ({len(props)}, K + 1); got {logits.shape}")
    if R == 0:
        return {
            "boxes": np.zeros((0, 4), np.float32),
            "labels": np.zeros(0, np.int64),
            "scores": np.zeros(0, np.float32),
        }
    deltas = np.asarray(box_deltas, dtype=np.float32).reshape(R, -1)
    if deltas.shape[1] == 4:
        deltas = np.tile(deltas, (1, classes))
    if deltas.shape[1] != 4 * classes:
        raise ValueError(f"box_deltas must have shape ({R}, {4 * classes}) or ({R}, 4)")
    coder = box_coder or BoxCoder((10.0, 10.0, 5.0, 5.0))
    boxes = coder.decode_single(deltas, props).reshape(R, classes, 4)[:, 1:]  # (R, K, 4)
    boxes = clip_boxes_to_image(boxes.reshape(-1, 4), image_size)
    scores = softmax(logits)[:, 1:].reshape(-1)  # (R * K,)
    labels = np.tile(np.arange(1, classes, dtype=np.int64), R)
    keep = np.flatnonzero(scores > score_thresh)
    keep = keep[remove_small_boxes(boxes[keep], 1e-2)]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]
    return {
        "boxes": boxes[keep].astype(np.float32),
        "labels": labels[keep],
        "scores": scores[keep].astype(np.float32),
    }


def _resample_matrix(start: float, stop: float, pixels: np.ndarray, size: int) -> np.ndarray:
    """``(len(pixels), size)`` bilinear weights reading a ``size``-sample axis that spans
    ``[start, stop)`` in image pixels, at the centres of the given image pixels."""
    coord = (pixels + 0.5 - start) / max(stop - start, 1e-6) * size - 0.5  # mask index frame
    w = linear_interpolation_weights(coord, size, np.float32)
    m = np.zeros((len(pixels), size), np.float32)
    rows = np.arange(len(pixels))
    np.add.at(m, (rows, w.lo), w.w_lo)
    np.add.at(m, (rows, w.hi), w.w_hi)
    return m


def paste_masks_in_image(masks, boxes, image_size, threshold: float = 0.5) -> np.ndarray:
    """Resize each ``M x M`` mask into its box and place it in an empty image.

    Args:
        masks: ``(D, M, M)`` mask probabilities in ``[0, 1]`` (or ``(D, 1, M, M)``).
        boxes: ``(D, 4)`` boxes in image pixels.
        image_size: ``(H, W)`` of the image.
        threshold: probability at or above which a pixel is in the mask.

    Returns:
        ``(D, H, W)`` bool masks. Each detection costs two small matrix products over its own box
        (the bilinear weights factor into a row part and a column part).
    """
    m = np.asarray(masks, dtype=np.float32)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    b = as_boxes(boxes, dtype=np.float64)
    if m.ndim != 3 or len(m) != len(b):
        raise ValueError(f"masks must have shape ({len(b)}, M, M); got {np.shape(masks)}")
    H, W = (int(v) for v in image_size)
    out = np.zeros((len(b), H, W), dtype=bool)
    for d, (x1, y1, x2, y2) in enumerate(b):
        # image pixels whose centres fall inside the box
        cols = np.arange(max(int(np.ceil(x1 - 0.5)), 0), min(int(np.ceil(x2 - 0.5)), W))
        rows = np.arange(max(int(np.ceil(y1 - 0.5)), 0), min(int(np.ceil(y2 - 0.5)), H))
        if len(rows) == 0 or len(cols) == 0:
            continue
        ay = _resample_matrix(y1, y2, rows, m.shape[1])  # (h, M)
        ax = _resample_matrix(x1, x2, cols, m.shape[2])  # (w, M)
        out[d, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = ay @ m[d] @ ax.T >= threshold
    return out
