"""Figures of notebook 06 (the feature pyramid in miniature): how big the multi-scale shapes are,
how well one map's anchors fit them against a pyramid's, and the small objects one arm finds and
the other misses.

The pyramid's own figures (each level's map, anchors per level, the level rule) are
:mod:`viz.pyramid`'s, which read :meth:`MaskRCNNFPN.inspect` records as they read the full-scale
model's. Boxes are ``x1, y1, x2, y2`` in image pixels; an object's size is COCO's: its mask area
(``sqrt`` of it as a side), small below ``32 ** 2``, large above ``96 ** 2``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..boxes import box_iou
from ..conventions import as_boxes, as_rgb_uint8, as_scores
from ..datasets.shapes import CLASS_NAMES
from ..evaluation import AREA_RANGES, object_areas
from .boxes import draw_boxes

__all__ = [
    "SMALL",
    "LARGE",
    "object_areas",
    "best_anchor_iou",
    "objects_found",
    "plot_object_sizes",
    "plot_anchor_coverage",
    "plot_found_and_missed",
]

SMALL, LARGE = AREA_RANGES["small"][1], AREA_RANGES["large"][0]  # COCO's: 32^2, 96^2
_ARM_COLOURS = ("tab:orange", "tab:blue", "tab:green", "tab:purple")


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def best_anchor_iou(anchors, boxes, chunk: int = 4096) -> np.ndarray:
    """For each box, the highest IoU any anchor has with it: how well the anchors fit before the
    RPN regresses anything (the RPN's positives need 0.7, or are each box's best anchor).

    Args:
        anchors: ``(A, 4)`` anchors in image pixels (all levels of an arm).
        boxes: ``(G, 4)`` ground-truth boxes in the same frame.
        chunk: anchors per IoU block (memory bounded at ``chunk x G``).

    Returns:
        ``(G,)`` float64; 0 for every box when there are no anchors.
    """
    anchors = as_boxes(anchors, "anchors", dtype=np.float64)
    boxes = as_boxes(boxes, "boxes", dtype=np.float64)
    best = np.zeros(len(boxes))
    for start in range(0, len(anchors), chunk):
        if len(boxes):
            best = np.maximum(best, box_iou(anchors[start : start + chunk], boxes).max(axis=0))
    return best


def objects_found(
    detections: dict, target: dict, iou_threshold: float = 0.5, score_threshold: float = 0.5
) -> np.ndarray:
    """Which ground-truth objects a detector found: some detection of the object's class with a
    score of at least ``score_threshold`` overlaps its box with IoU at least ``iou_threshold``.

    Args:
        detections: ``model.predict(image)``: ``"boxes"`` ``(D, 4)``, ``"labels"`` ``(D,)``,
            ``"scores"`` ``(D,)``.
        target: ``"boxes"`` ``(G, 4)`` and ``"labels"`` ``(G,)``.
        iou_threshold, score_threshold: the two cuts.

    Returns:
        ``(G,)`` bool.
    """
    boxes = as_boxes(detections["boxes"], "detections['boxes']", dtype=np.float64)
    scores = as_scores(detections["scores"], len(boxes), "detections['scores']")
    labels = np.asarray(detections["labels"], np.int64).reshape(-1)
    gt = as_boxes(target["boxes"], "target['boxes']", dtype=np.float64)
    gt_labels = np.asarray(target["labels"], np.int64).reshape(-1)
    if labels.shape != (len(boxes),) or gt_labels.shape != (len(gt),):
        raise ValueError("detections['labels'] and target['labels'] must give one label per box")
    confident = scores >= score_threshold
    hits = box_iou(boxes, gt) >= iou_threshold  # (D, G)
    hits &= confident[:, None] & (labels[:, None] == gt_labels[None, :])
    return hits.any(axis=0)


def plot_object_sizes(targets, bins: int = 24, strides=(4, 8, 16, 32)) -> Figure:
    """A histogram of the objects' sizes ``sqrt(area)`` on a log axis, with COCO's small / medium /
    large bounds (32 and 96 pixels) and the strides of the pyramid's maps marked.

    Args:
        targets: dicts with ``"boxes"`` and ``"masks"`` (sizes from the masks, as COCO's).
        bins: number of log-spaced bins from 4 to 256 pixels.
        strides: the feature strides drawn as dotted lines (a cell's side in pixels).

    Returns:
        A Figure with 1 Axes; its bars are ``np.histogram(sqrt(areas), edges)``.
    """
    side = np.sqrt(object_areas(targets))
    edges = np.geomspace(4, 256, int(bins) + 1)
    counts, _ = np.histogram(side, edges)
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="0.6", ec="white")
    for bound, name in ((32, "32: small | medium"), (96, "96: medium | large")):
        ax.axvline(bound, color="k", lw=1.2)
        ax.text(bound * 1.04, counts.max() * 0.95, name, fontsize=8)
    for s in strides:
        ax.axvline(s, color="tab:blue", ls=":", lw=1)
        ax.text(s * 1.04, counts.max() * 0.6, f"stride {s}", fontsize=7, color="tab:blue",
                rotation=90)  # fmt: skip
    small = int((side**2 < SMALL).sum())
    ax.set(xscale="log", xlabel="sqrt(mask area), pixels", ylabel="objects")
    ax.set_title(
        f"{len(side)} objects; {small} small ({small / max(len(side), 1):.0%})", fontsize=9
    )
    return fig


def plot_anchor_coverage(boxes, anchors: dict, areas=None, thresholds=(0.3, 0.7)) -> Figure:
    """Each object's best anchor IoU (:func:`best_anchor_iou`) against its size, one colour per
    set of anchors (an arm), with the RPN's negative and positive thresholds and COCO's small bound.

    Args:
        boxes: ``(G, 4)`` ground-truth boxes.
        anchors: ``{name: (A, 4) anchors}``, e.g. each arm's anchors of one image.
        areas: ``(G,)`` object sizes (mask areas); by default the boxes' ``w h``.
        thresholds: IoUs drawn as horizontal lines (the RPN's 0.3 and 0.7).

    Returns:
        A Figure with 1 Axes: one scatter per anchor set, x ``sqrt(area)``, y the best IoU.
    """
    boxes = as_boxes(boxes, "boxes", dtype=np.float64)
    if areas is None:
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    areas = np.asarray(areas, np.float64).reshape(-1)
    if areas.shape != (len(boxes),):
        raise ValueError(f"areas must have one entry per box ({len(boxes)}); got {areas.shape}")
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for k, (name, a) in enumerate(anchors.items()):
        best = best_anchor_iou(a, boxes)
        ax.scatter(np.sqrt(areas), best, s=8, alpha=0.6, color=_ARM_COLOURS[k % 4],
                   label=f"{name} ({len(a):,} anchors)")  # fmt: skip
    for t in thresholds:
        ax.axhline(t, color="grey", ls="--", lw=0.8)
    ax.axvline(np.sqrt(SMALL), color="k", lw=1)
    ax.set(xscale="log", xlabel="sqrt(mask area) of the object, pixels",
           ylabel="best anchor IoU", ylim=(0, 1))  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("how well the anchors fit each object before any regression", fontsize=9)
    return fig


def plot_found_and_missed(
    images,
    targets,
    predictions: dict,
    objects,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    margin: int = 20,
    columns: int = 4,
    class_names=CLASS_NAMES,
) -> Figure:
    """Crops around chosen objects with each arm's closest detection: the ground truth dashed white;
    in each arm's colour, its detection of the object's class scoring at least ``score_threshold``
    with the highest IoU with the object, labelled with that IoU (none drawn when no such detection
    overlaps it); the title says which arms found the object (:func:`objects_found`).

    Args:
        images: ``H x W x 3`` images.
        targets: one target per image (``"boxes"``, ``"labels"``).
        predictions: ``{arm name: [detections per image]}``.
        objects: ``(image index, object index)`` pairs to show.
        score_threshold, iou_threshold: what counts as found.
        margin: pixels of context around the object's box (the crop is square).
        columns: panels per row.
        class_names: name of each label.

    Returns:
        A Figure with one Axes per object (and blank ones to fill the last row).
    """
    objects = [(int(i), int(g)) for i, g in objects]
    rows = max(1, -(-len(objects) // columns))
    fig = Figure(figsize=(2.6 * columns, 2.9 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, (i, g) in zip(axes, objects, strict=False):
        img = as_rgb_uint8(images[i])
        x1, y1, x2, y2 = as_boxes(targets[i]["boxes"], f"targets[{i}]['boxes']")[g]
        half = max(x2 - x1, y2 - y1) / 2 + margin  # a square crop centred on the object
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ax.imshow(img)
        draw_boxes(ax, [[x1, y1, x2, y2]], color="white", linewidth=1.5)
        ax.patches[-1].set_linestyle("--")
        label = int(targets[i]["labels"][g])
        found = []
        for k, (name, preds) in enumerate(predictions.items()):
            det = preds[i]
            if objects_found(det, targets[i], iou_threshold, score_threshold)[g]:
                found.append(name)
            # the arm's closest confident detection of the object's class, with its IoU
            mine = np.flatnonzero((np.asarray(det["scores"]) >= score_threshold)
                                  & (np.asarray(det["labels"]) == label))  # fmt: skip
            if len(mine):
                iou = box_iou(np.asarray(det["boxes"], np.float64)[mine], [[x1, y1, x2, y2]])[:, 0]
                if iou.max() > 0:
                    draw_boxes(ax, np.asarray(det["boxes"])[mine[[iou.argmax()]]],
                               color=_ARM_COLOURS[k % 4], labels=[f"IoU {iou.max():.2f}"])  # fmt: skip
                ax.texts[-1].set_clip_on(True)  # a large box's label stays inside the crop
        ax.set_xlim(cx - half - 0.5, cx + half - 0.5)
        ax.set_ylim(cy + half - 0.5, cy - half - 0.5)
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        side = np.sqrt((x2 - x1) * (y2 - y1))
        who = " and ".join(found) if found else "neither"
        ax.set_title(f"{name}, {side:.0f} px: found by {who}", fontsize=8)
        _off(ax)
    for ax in axes[len(objects) :]:
        ax.axis("off")
    handles = [
        Line2D([], [], color=_ARM_COLOURS[k % 4], label=f"{name} (score >= {score_threshold:g})")
        for k, name in enumerate(predictions)
    ]
    handles.append(Line2D([], [], color="0.4", ls="--", label="ground truth (white)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    return fig
