"""Figures of samples and detections: image, boxes with class names (and scores), mask overlays."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.patheffects import withStroke

from ..conventions import as_boxes, as_rgb_uint8, as_scores
from ..datasets.shapes import CLASS_NAMES
from .boxes import draw_boxes

__all__ = ["draw_detections", "draw_sample", "plot_samples", "CLASS_COLOURS"]

CLASS_COLOURS = (
    "white",
    "tab:red",
    "tab:blue",
    "tab:green",
)  # background, circle, square, triangle


def draw_detections(
    image,
    detections: dict,
    ax=None,
    class_names=CLASS_NAMES,
    score_threshold: float = 0.0,
    ground_truth: dict | None = None,
    mask_alpha: float = 0.45,
) -> Figure:
    """Draw an image with boxes, class names, scores (if given) and mask overlays.

    Args:
        image: ``H x W x 3`` uint8 or float in ``[0, 1]``.
        detections: dict with ``"boxes"`` ``(D, 4)`` ``x1, y1, x2, y2`` pixels, ``"labels"`` ``(D,)``
            ints, optional ``"scores"`` ``(D,)`` (printed after the name) and optional ``"masks"``
            ``(D, H, W)``, bool or probabilities (shown where ``> 0.5``). Ground truth or predictions.
        ax: a Matplotlib Axes to draw on; by default a new Figure with one Axes is made.
        class_names: name of each label, background first.
        score_threshold: detections scoring below it are not drawn (needs ``"scores"``).
        ground_truth: optional target dict whose boxes are drawn dashed, to compare with.
        mask_alpha: opacity of the mask tint.

    Returns:
        The Figure that holds ``ax`` (never shown).
    """
    if ax is None:
        ax = Figure(figsize=(4, 4), layout="constrained").add_subplot()
    boxes = as_boxes(detections.get("boxes", np.zeros((0, 4))), "detections['boxes']")
    labels = np.asarray(detections.get("labels", np.zeros(len(boxes))), np.int64).reshape(-1)
    if labels.shape != (len(boxes),):
        raise ValueError(
            f"detections['labels'] must have shape ({len(boxes)},); got {labels.shape}"
        )
    scores = detections.get("scores")
    keep = np.ones(len(boxes), bool)
    if scores is not None:
        scores = as_scores(scores, len(boxes), "detections['scores']")
        keep = scores >= score_threshold
    img = as_rgb_uint8(image).astype(np.float32) / 255
    masks = detections.get("masks")
    if masks is not None and len(masks):
        masks = np.asarray(masks)
        if masks.shape != (len(boxes),) + img.shape[:2]:
            raise ValueError(
                f"detections['masks'] must have shape {(len(boxes),) + img.shape[:2]}; "
                f"got {masks.shape}"
            )
        masks = masks if masks.dtype == bool else masks > 0.5
        for k in np.flatnonzero(keep):  # per object, whole-mask work
            tint = np.array(to_rgb(_colour(labels[k])), np.float32)
            img[masks[k]] = (1 - mask_alpha) * img[masks[k]] + mask_alpha * tint
    ax.imshow(img)
    if ground_truth is not None:
        for x1, y1, x2, y2 in as_boxes(ground_truth["boxes"], "ground_truth['boxes']"):
            # imshow centres pixel (i, j) at (j, i): shift the continuous frame by -0.5
            ax.add_patch(
                Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="white", ls="--")
            )
    for k in np.flatnonzero(keep):
        name = class_names[labels[k]] if 0 <= labels[k] < len(class_names) else str(labels[k])
        text = f"{name} {scores[k]:.2f}" if scores is not None else name
        draw_boxes(ax, boxes[k][None], color=_colour(labels[k]), labels=[text])
        # a dark halo keeps the box visible on a background of its own colour
        ax.patches[-1].set_path_effects([withStroke(linewidth=3.5, foreground="black")])
    ax.set_xticks([])
    ax.set_yticks([])
    return ax.figure


def draw_sample(image, target: dict, ax=None, class_names=CLASS_NAMES) -> Figure:
    """A ground-truth sample ``(image, target)`` of the shapes data set: :func:`draw_detections`
    without scores. Returns the Figure that holds ``ax`` (a new one by default)."""
    return draw_detections(image, target, ax=ax, class_names=class_names)


def plot_samples(samples, titles=None, columns: int = 4) -> Figure:
    """A grid of ``(image, target)`` pairs drawn with :func:`draw_detections`."""
    samples = list(samples)
    rows = max(1, -(-len(samples) // columns))
    fig = Figure(figsize=(3 * columns, 3 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for k, ax in enumerate(axes):
        if k < len(samples):
            draw_detections(*samples[k], ax=ax)
            if titles is not None:
                ax.set_title(titles[k], fontsize=9)
        else:
            ax.axis("off")
    return fig


def _colour(label: int) -> str:
    return CLASS_COLOURS[int(label) % len(CLASS_COLOURS)]
