"""From head outputs to what a user gets: detections per image, and masks pasted into the image.

Detections follow torchvision's ``postprocess_detections``: softmax over classes, one decoded box per
class, clip, drop the background column, drop scores <= ``score_thresh``, drop tiny boxes, NMS per
class, keep the best ``detections_per_img``.

Masks are pasted the way Detectron2 does it, in our continuous pixel frame: image pixel ``(i, j)``
belongs to a detection's mask when its centre ``(j + 0.5, i + 0.5)`` lies in the box and the ``M x M``
mask, read bilinearly at the corresponding point, is at least ``threshold`` (0.5, the paper's value).

``paste_masks_torchvision`` is torchvision's own pasting, kept separate because it differs: it pads the
mask by a pixel of zeros, enlarges the box to match, rounds the box to whole pixels (truncation), resizes
the mask with torch's bilinear kernel to the rounded box's size and returns float probabilities, not a
thresholded mask. That is what the real Mask R-CNN's weights expect (``transform.py`` uses it).
"""

from __future__ import annotations

import numpy as np

from .bilinear import interpolate_bilinear, linear_interpolation_weights
from .box_coder import BoxCoder
from .boxes import batched_nms, clip_boxes_to_image, remove_small_boxes
from .conventions import as_boxes

__all__ = ["softmax", "postprocess_detections", "paste_masks_in_image", "paste_masks_torchvision"]


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

    This is Detectron2's pasting in continuous coordinates (the mask spans the box exactly, no
    rounding); torchvision's, which the published Mask R-CNN weights go with, is
    :func:`paste_masks_torchvision` (padded mask, enlarged and truncated box, float output).
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


def paste_masks_torchvision(masks, boxes, img_shape, padding: int = 1) -> np.ndarray:
    """torchvision's ``paste_masks_in_image``: each mask resized into its box, as float probabilities.

    Args:
        masks: ``(D, 1, M, M)`` (torchvision's layout) or ``(D, M, M)`` float mask probabilities.
        boxes: ``(D, 4)`` ``x1, y1, x2, y2`` in the pixels of the image the masks go into.
        img_shape: ``(H, W)`` of that image.
        padding: zero pixels added on each side of every mask before resizing (torchvision: 1).

    Returns:
        ``(D, 1, H, W)`` float32 in ``[0, 1]``, not thresholded (torchvision's layout; threshold it
        yourself, e.g. ``> 0.5`` as torchvision's COCO evaluation does). ``(0, 1, H, W)`` for no masks.

    The steps (``expand_masks``, ``expand_boxes``, ``paste_mask_in_image``), all in float32:

    1. pad each mask by ``padding`` zeros, to ``M + 2 padding``; ``scale = (M + 2 padding) / M``;
    2. enlarge each box about its centre by ``scale`` (half-sizes times ``scale``), then convert it to
       int64 by truncation toward 0, so ``[x1, y1, x2, y2]`` become whole pixels;
    3. resize the padded mask to ``h = max(y2 - y1 + 1, 1)`` rows and ``w = max(x2 - x1 + 1, 1)``
       columns with torch's bilinear kernel (:func:`interpolate_bilinear`), so the pasted mask covers
       pixels ``x1..x2`` and ``y1..y2`` *inclusive*;
    4. copy the part that lies inside the image, ``[max(y1, 0), min(y2 + 1, H))`` by
       ``[max(x1, 0), min(x2 + 1, W))``; the rest of the image is 0.

    Differences from :func:`paste_masks_in_image` (Detectron2's): rounding the box to whole pixels
    moves the mask by up to a pixel, the padding lets the mask fade to 0 at the box's edge, and the
    result is a probability. A box wholly outside the image gives an empty mask (torchvision's own
    slicing misbehaves there; detections are clipped to the image, so it does not arise in the model).
    """
    m = np.asarray(masks)
    if m.ndim == 3:
        m = m[:, None]
    b = as_boxes(boxes, dtype=np.float32)
    if m.ndim != 4 or m.shape[1] != 1 or len(m) != len(b) or 0 in m.shape[2:]:
        raise ValueError(
            f"masks must have shape ({len(b)}, 1, M, M) or ({len(b)}, M, M), one per box; "
            f"got {np.shape(masks)}"
        )
    if not np.issubdtype(m.dtype, np.floating):
        raise ValueError(f"masks must hold float probabilities; got dtype {m.dtype}")
    H, W = (int(v) for v in img_shape)
    if H < 1 or W < 1:
        raise ValueError(f"img_shape must be a positive (H, W); got {tuple(img_shape)}")
    padding = int(padding)
    if padding < 0:
        raise ValueError(f"padding must be >= 0; got {padding}")
    M = m.shape[-1]
    scale = np.float32(float(M + 2 * padding) / M)  # torch multiplies a float32 tensor by it
    padded = np.pad(m[:, 0].astype(np.float32), ((0, 0), (padding, padding), (padding, padding)))
    half = np.float32(0.5)
    centre_x, centre_y = (b[:, 2] + b[:, 0]) * half, (b[:, 3] + b[:, 1]) * half
    half_w, half_h = (b[:, 2] - b[:, 0]) * half * scale, (b[:, 3] - b[:, 1]) * half * scale
    expanded = np.stack(
        [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], axis=1
    ).astype(np.int64)  # (D, 4), truncated toward 0 like torch's .to(torch.int64)
    out = np.zeros((len(b), 1, H, W), np.float32)
    for d, (x1, y1, x2, y2) in enumerate(expanded.tolist()):
        w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        x_0, x_1 = max(x1, 0), min(x2 + 1, W)
        y_0, y_1 = max(y1, 0), min(y2 + 1, H)
        if x_1 <= x_0 or y_1 <= y_0:
            continue  # nothing of this box is inside the image
        resized = interpolate_bilinear(padded[d : d + 1], (h, w))[0]  # (h, w)
        out[d, 0, y_0:y_1, x_0:x_1] = resized[y_0 - y1 : y_1 - y1, x_0 - x1 : x_1 - x1]
    return out
