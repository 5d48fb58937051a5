"""Figures of samples and detections: image, boxes with class names (and scores), mask overlays."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..conventions import as_rgb_uint8
from ..datasets.shapes import CLASS_NAMES
from .boxes import draw_boxes

__all__ = ["draw_sample", "plot_samples"]

COLOURS = ("white", "tab:red", "tab:blue", "tab:green")


def draw_sample(ax, image, target, class_names=CLASS_NAMES, mask_alpha: float = 0.45) -> None:
    """Draw an image with its boxes, labels (and scores, if ``target`` has them) and masks on ``ax``.

    Args:
        image: ``H x W x 3`` image.
        target: dict with ``"boxes"`` ``(N, 4)``, ``"labels"`` ``(N,)``, optional ``"scores"`` ``(N,)``
            and ``"masks"`` ``(N, H, W)`` bool (ground truth or predictions alike).
    """
    img = as_rgb_uint8(image).astype(np.float32) / 255
    labels = np.asarray(target.get("labels", []), dtype=np.int64)
    masks = target.get("masks")
    if masks is not None and len(masks):
        for k, m in enumerate(np.asarray(masks, dtype=bool)):
            tint = np.array(_rgb(COLOURS[labels[k] % len(COLOURS)]))
            img[m] = (1 - mask_alpha) * img[m] + mask_alpha * tint
    ax.imshow(img)
    scores = target.get("scores")
    for k, box in enumerate(np.asarray(target.get("boxes", np.zeros((0, 4))), np.float32)):
        name = class_names[labels[k]] if labels[k] < len(class_names) else str(labels[k])
        text = f"{name} {scores[k]:.2f}" if scores is not None else name
        draw_boxes(ax, box[None], color=COLOURS[labels[k] % len(COLOURS)], labels=[text])
    ax.set_xticks([])
    ax.set_yticks([])


def _rgb(name: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(name)


def plot_samples(samples, titles=None, columns: int = 4) -> Figure:
    """A grid of ``(image, target)`` pairs drawn with :func:`draw_sample`."""
    samples = list(samples)
    rows = max(1, -(-len(samples) // columns))
    fig = Figure(figsize=(3 * columns, 3 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for k, ax in enumerate(axes):
        if k < len(samples):
            draw_sample(ax, *samples[k])
            if titles is not None:
                ax.set_title(titles[k], fontsize=9)
        else:
            ax.axis("off")
    return fig
