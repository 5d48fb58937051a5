"""Figures of notebook 05 (Mask R-CNN at full scale): the shapes of every stage, the feature pyramid's
levels, the anchors and proposals of each level, the FPN level rule, and detections on a photograph.

Every function reads the dict of :meth:`MaskRCNNResNet50FPN.inspect` (``record``): ``input``
``(1, 3, Hp, Wp)`` (normalised, resized, padded), ``image_size`` (resized, unpadded ``(h, w)``),
``C2`` .. ``C5``, ``P2`` .. ``P6``, ``anchors/<level>``, ``proposals`` with ``proposal_levels``,
``roi_levels``, ``detections`` ... Boxes in a record are in the resized image's pixels, the frame
of ``input``; only ``record["detections"]`` is in the original image's.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from ..conventions import as_boxes, as_rgb_uint8, as_scores
from ..proposals.anchors import AnchorGenerator
from ..roi.multiscale import level_of_boxes
from ..transform import GeneralizedRCNNTransform
from .boxes import draw_boxes

__all__ = [
    "LEVEL_NAMES",
    "architecture_rows",
    "shape_table",
    "shapes_by_rule",
    "plot_architecture_shapes",
    "plot_pyramid_levels",
    "plot_anchors_per_level",
    "plot_proposals_per_level",
    "plot_level_rule",
    "plot_full_scale_detections",
]

# torchvision's names of the pyramid levels P2 .. P6 (the keys of BackboneWithFPN's output)
LEVEL_NAMES = ("0", "1", "2", "3", "pool")
_LEVEL_COLOURS = ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _shape(value) -> str:
    return " x ".join(str(n) for n in np.shape(value))


def _need(record, *keys) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(
            f"record must hold {', '.join(map(repr, missing))} (the dict of model.inspect); "
            f"it has {sorted(record)[:12]}"
        )


def _stride(record, key: str) -> tuple[int, int]:
    """``(stride_y, stride_x)`` of a feature map: padded input size // map size, as torchvision's
    AnchorGenerator computes it (so 'pool' at 800 x 1088 has stride (61, 64))."""
    Hp, Wp = np.shape(record["input"])[-2:]
    h, w = np.shape(record[key])[-2:]
    return Hp // h, Wp // w


def _stride_text(stride) -> str:
    sy, sx = stride
    return str(sy) if sy == sx else f"({sy}, {sx})"


def input_image(record, image_mean=None, image_std=None) -> np.ndarray:
    """The network's input ``record["input"]`` ``(1, 3, Hp, Wp)`` as an ``Hp x Wp x 3`` float image in
    ``[0, 1]``: the resized photograph, un-normalised, with its padding (zeros after normalising, so
    the mean colour) on the bottom and right. The mean and std default to the record's
    ``image_mean`` / ``image_std`` if it has them (a model that normalises otherwise), else ImageNet's."""
    _need(record, "input")
    image_mean = record.get("image_mean", _IMAGENET_MEAN) if image_mean is None else image_mean
    image_std = record.get("image_std", _IMAGENET_STD) if image_std is None else image_std
    x = np.asarray(record["input"], np.float32)
    if x.ndim != 4 or x.shape[:2] != (1, 3):
        raise ValueError(f"record['input'] must have shape (1, 3, Hp, Wp); got {x.shape}")
    img = x[0].transpose(1, 2, 0) * np.asarray(image_std, np.float32) + np.asarray(image_mean)
    return np.clip(img, 0.0, 1.0)


# ------------------------------------------------------------------------------------- the shapes


def architecture_rows(record) -> list[tuple[str, str, str, str]]:
    """One row per stage of the forward pass: ``(stage, torchvision module, shape, note)``.

    Args:
        record: the dict of ``model.inspect(image)``; stages it lacks are left out (so a Faster
            R-CNN record has no mask rows).

    Returns:
        Rows in data-flow order; shapes are ``"C x H x W"`` style strings, notes give strides,
        anchor sizes and counts.
    """
    _need(record, "input", "image_size")
    Hp, Wp = np.shape(record["input"])[-2:]
    h, w = record["image_size"]
    rows = [("input", "transform", _shape(record["input"]),
             f"resized to {h} x {w}, padded to {Hp} x {Wp} (multiples of 32)")]  # fmt: skip
    for k in range(2, 6):
        key = f"C{k}"
        if key in record:
            note = f"stride {_stride_text(_stride(record, key))}"
            rows.append((key, f"backbone.body.layer{k - 1}", _shape(record[key]), note))
    for k, name in enumerate(LEVEL_NAMES):
        key = f"P{k + 2}"
        if key in record:
            note = f"stride {_stride_text(_stride(record, key))}"
            rows.append((key, f"backbone.fpn['{name}']", _shape(record[key]), note))
    total = 0
    for k, name in enumerate(LEVEL_NAMES):
        key = f"anchors/{name}"
        if key in record:
            n = len(record[key])
            total += n
            gh, gw = np.shape(record[f"P{k + 2}"])[-2:] if f"P{k + 2}" in record else (n, 1)
            note = f"{gh} x {gw} cells x {n // max(gh * gw, 1)}, size {_anchor_size(record[key])}"
            rows.append((f"anchors P{k + 2}", "rpn.anchor_generator", f"{n:,} x 4", note))
    if total:
        rows.append(("anchors, all levels", "rpn.anchor_generator", f"{total:,} x 4", ""))
    if "proposals" in record:
        rows.append(("proposals", "rpn (filter_proposals)", _shape(record["proposals"]),
                     "top 1000 per level, NMS 0.7 per level, best 1000"))  # fmt: skip
    if "roi_levels" in record:
        counts = np.bincount(np.asarray(record["roi_levels"], np.int64), minlength=4)
        text = ", ".join(f"P{k + 2}: {c}" for k, c in enumerate(counts))
        rows.append(("RoIs per level", "roi_heads.box_roi_pool", text, "the level rule"))
    for key, module, note in (
        ("box_features", "roi_heads.box_roi_pool", "RoIAlign 7 x 7, sampling 2"),
        ("class_logits", "roi_heads.box_predictor.cls_score", "91 COCO ids, 0 = background"),
        ("box_regression", "roi_heads.box_predictor.bbox_pred", "4 deltas per class"),
    ):
        if key in record:
            rows.append((key, module, _shape(record[key]), note))
    if "detections_resized" in record:
        boxes = record["detections_resized"]["boxes"]
        rows.append(("detections", "roi_heads.postprocess_detections", _shape(boxes),
                     "score > 0.05, NMS 0.5 per class, best 100"))  # fmt: skip
    if "mask_logits" in record:
        rows.append(("mask_logits", "roi_heads.mask_head + mask_predictor",
                     _shape(record["mask_logits"]), "RoIAlign 14 x 14, 4 convs, deconv 2x"))  # fmt: skip
    det = record.get("detections", {})
    if "masks" in det:
        rows.append(("masks", "transform.postprocess", _shape(det["masks"]),
                     "pasted into the original image"))  # fmt: skip
    return rows


def _anchor_size(anchors) -> str:
    """The size of a level's anchors: the side of its first cell's squarest anchor (the others have
    the same area up to rounding)."""
    a = as_boxes(np.asarray(anchors)[:3], "anchors")
    if not len(a):
        return "-"
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    k = int(np.argmin(np.abs(np.log(np.maximum(h, 1e-6) / np.maximum(w, 1e-6)))))
    return f"{int(round(float(np.sqrt(w[k] * h[k]))))}"


def shape_table(record) -> str:
    """:func:`architecture_rows` as a Markdown table, for ``print``."""
    rows = architecture_rows(record)
    lines = ["| stage | torchvision module | shape | note |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def shapes_by_rule(image_shape, min_size: int = 800, max_size: int = 1333) -> dict:
    """The shapes of a forward pass worked out from the rules alone, without running the network.

    The transform's resize rule (:meth:`GeneralizedRCNNTransform.resized_size`) and padding to a
    multiple of 32 give the input; each ResNet stage halves it (C2 at stride 4 .. C5 at 32, exact
    since the padded size is a multiple of 32), the FPN keeps C2 .. C5's sizes with 256 channels, and
    'pool' takes every other cell of P5 (``ceil(h / 2)``); the anchor generator puts 3 anchors on
    every cell of every level.

    Args:
        image_shape: ``(H, W)`` or ``(H, W, 3)`` of the photograph.
        min_size, max_size: the transform's sizes (torchvision's defaults 800 and 1333).

    Returns:
        A record shaped like ``model.inspect``'s for the keys ``input``, ``image_size``, ``C2`` ..
        ``C5``, ``P2`` .. ``P6`` (zero-strided arrays: right shapes, no memory) and
        ``anchors/<level>`` (the real anchors), for :func:`architecture_rows` and its figures.
    """
    if len(image_shape) not in (2, 3):
        raise ValueError(f"image_shape must be (H, W) or (H, W, 3); got {image_shape}")
    transform = GeneralizedRCNNTransform(min_size, max_size)
    h, w, _ = transform.resized_size(*image_shape[:2])
    d = transform.size_divisible
    Hp, Wp = -(-h // d) * d, -(-w // d) * d

    def empty(*shape):
        return np.broadcast_to(np.float32(0), shape)

    record = {"input": empty(1, 3, Hp, Wp), "image_size": (h, w)}
    for k, c in zip(range(2, 6), (256, 512, 1024, 2048), strict=True):
        record[f"C{k}"] = empty(1, c, Hp // 2**k, Wp // 2**k)
        record[f"P{k}"] = empty(1, 256, Hp // 2**k, Wp // 2**k)
    record["P6"] = empty(1, 256, -(-(Hp // 32) // 2), -(-(Wp // 32) // 2))
    sizes = [record[f"P{k}"].shape[2:] for k in range(2, 7)]
    generator = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    anchors = generator((Hp, Wp), sizes)
    bounds = np.cumsum([0] + [3 * a * b for a, b in sizes])
    for k, name in enumerate(LEVEL_NAMES):
        record[f"anchors/{name}"] = anchors[bounds[k] : bounds[k + 1]]
    return record


def plot_architecture_shapes(record) -> Figure:
    """:func:`architecture_rows` drawn as a table: one row per stage, its torchvision module, its
    output's shape and a note (stride, anchors, counts). One Axes."""
    rows = architecture_rows(record)
    fig = Figure(figsize=(11, 0.22 * (len(rows) + 1) + 0.4), layout="constrained")
    ax = fig.add_subplot()
    ax.axis("off")
    table = ax.table(
        cellText=[list(r) for r in rows],
        colLabels=["stage", "torchvision module", "shape", "note"],
        bbox=(0, 0, 1, 1),
        cellLoc="left",
        colLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(range(4))
    h, w = record["image_size"]
    ax.set_title(f"every stage's output for one image (resized {h} x {w})", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------ the pyramid


def _activation_image(feature) -> np.ndarray:
    """Mean absolute activation over channels of a ``(1, C, h, w)`` or ``(C, h, w)`` map."""
    f = np.asarray(feature)
    f = f[0] if f.ndim == 4 else f
    if f.ndim != 3:
        raise ValueError(f"a feature map must have shape (1, C, h, w); got {np.shape(feature)}")
    return np.abs(f).mean(axis=0)


def plot_pyramid_levels(record) -> Figure:
    """The ResNet's stages C2 .. C5 (top row, after the input) and the pyramid's levels P2 .. P6
    (bottom row), each as the mean absolute activation over its channels, with its shape and stride.

    Args:
        record: the dict of ``model.inspect(image)`` (``input``, ``C2`` .. ``C5``, ``P2`` .. ``P6``).

    Returns:
        A Figure with 10 Axes: input, C2 .. C5; P2 .. P6.
    """
    keys = [f"C{k}" for k in range(2, 6)] + [f"P{k}" for k in range(2, 7)]
    _need(record, "input", *keys)
    Hp, Wp = np.shape(record["input"])[-2:]
    fig = Figure(figsize=(15, 0.62 * 15 * Hp / Wp * 2 / 5 + 1.0), layout="constrained")
    axes = fig.subplots(2, 5)
    axes[0, 0].imshow(input_image(record))
    axes[0, 0].set_title(f"input {Hp} x {Wp}", fontsize=9)
    for ax, key in zip([*axes[0, 1:], *axes[1]], keys, strict=True):
        c, h, w = np.shape(record[key])[-3:]
        ax.imshow(_activation_image(record[key]), cmap="viridis")
        name = f" '{LEVEL_NAMES[int(key[1]) - 2]}'" if key[0] == "P" else ""
        ax.set_title(
            f"{key}{name}: {c} x {h} x {w}, stride {_stride_text(_stride(record, key))}", fontsize=9
        )
    for ax in axes.ravel():
        _off(ax)
    return fig


# ------------------------------------------------------------------------------- anchors per level


def plot_anchors_per_level(record, location=None) -> Figure:
    """The anchors of one cell at each of the five levels, drawn over the network's input (the
    resized, padded image), with the level's grid, stride and anchor count in the title.

    Args:
        record: the dict of ``model.inspect(image)`` (``input``, ``P2`` .. ``P6``,
            ``anchors/<level>``): anchors ``(h w A, 4)`` per level, cell by cell, in the input's pixels.
        location: ``(y, x)`` in input pixels of the cell to show (the same place at every level);
            by default the centre of the resized image.

    Returns:
        A Figure with 5 Axes, one per level P2 .. P6.
    """
    _need(record, "input", *[f"anchors/{n}" for n in LEVEL_NAMES], *[f"P{k}" for k in range(2, 7)])
    img = input_image(record)
    Hp, Wp = img.shape[:2]
    if location is None:
        h, w = record.get("image_size", (Hp, Wp))
        location = (h / 2, w / 2)
    y, x = location
    fig = Figure(figsize=(16, 16 / 5 * Hp / Wp + 0.8), layout="constrained")
    axes = fig.subplots(1, 5)
    for k, (ax, name) in enumerate(zip(axes, LEVEL_NAMES, strict=True)):
        anchors = as_boxes(record[f"anchors/{name}"], f"record['anchors/{name}']")
        gh, gw = np.shape(record[f"P{k + 2}"])[-2:]
        sy, sx = _stride(record, f"P{k + 2}")
        A = len(anchors) // max(gh * gw, 1)
        i, j = min(int(y // sy), gh - 1), min(int(x // sx), gw - 1)
        cell = anchors[(i * gw + j) * A : (i * gw + j + 1) * A]
        ax.imshow(img)
        draw_boxes(ax, cell, color=_LEVEL_COLOURS[k], linewidth=1.5)
        ax.set_xlim(-0.5, Wp - 0.5)
        ax.set_ylim(Hp - 0.5, -0.5)
        ax.set_title(
            f"P{k + 2} '{name}': size {_anchor_size(cell)}, stride {_stride_text((sy, sx))}\n"
            f"{gh} x {gw} cells x {A} = {len(anchors):,} anchors",
            fontsize=9,
        )
        _off(ax)
    return fig


# ----------------------------------------------------------------------------- proposals per level


def _in_frame(boxes, record, image):
    """Boxes of the resized frame, and the picture to draw them on (the input, or ``image`` with the
    boxes scaled to it)."""
    if image is None:
        return boxes, input_image(record)
    img = as_rgb_uint8(image)
    h, w = record["image_size"]
    ratio = np.array([img.shape[1] / w, img.shape[0] / h] * 2, np.float32)
    return boxes * ratio, img


def plot_proposals_per_level(record, image=None, show: int = 30) -> Figure:
    """The RPN's proposals split by the pyramid level whose anchor produced them: one panel per
    level P2 .. P6, its ``show`` best proposals drawn, the level's count in the title.

    Args:
        record: the dict of ``model.inspect(image)`` (``input``, ``image_size``, ``proposals``
            ``(R, 4)`` in the resized image's pixels, ``proposal_scores`` ``(R,)``,
            ``proposal_levels`` ``(R,)`` level index 0 .. 4).
        image: optional original ``H x W x 3`` photograph to draw on (boxes are scaled to it); by
            default the network's input.
        show: at most this many proposals drawn per level (the best scoring).

    Returns:
        A Figure with 5 Axes.
    """
    _need(record, "input", "image_size", "proposals", "proposal_levels")
    boxes = as_boxes(record["proposals"], "record['proposals']")
    levels = np.asarray(record["proposal_levels"], np.int64).reshape(-1)
    if levels.shape != (len(boxes),):
        raise ValueError(
            f"record['proposal_levels'] must have shape ({len(boxes)},); got {levels.shape}"
        )
    scores = np.asarray(record.get("proposal_scores", -np.arange(len(boxes))), np.float32)
    boxes, img = _in_frame(boxes, record, image)
    fig = Figure(figsize=(16, 16 / 5 * img.shape[0] / img.shape[1] + 0.8), layout="constrained")
    axes = fig.subplots(1, 5)
    for k, ax in enumerate(axes):
        mine = np.flatnonzero(levels == k)
        best = mine[np.argsort(-scores[mine], kind="stable")[:show]]
        ax.imshow(img)
        draw_boxes(ax, boxes[best], color=_LEVEL_COLOURS[k], linewidth=1.0)
        ax.set_title(
            f"P{k + 2} '{LEVEL_NAMES[k]}': {len(mine)} proposals\n(best {len(best)} drawn)",
            fontsize=9,
        )
        _off(ax)
    return fig


# ------------------------------------------------------------------------------- the level rule


def plot_level_rule(
    boxes=None,
    roi_levels=None,
    k_min: int = 2,
    k_max: int = 5,
    canonical_scale: float = 224,
    canonical_level: int = 4,
    label: str = "RoIs",
) -> Figure:
    """The FPN level rule ``k = floor(k0 + log2(sqrt(w h) / 224))``, clamped to ``[k_min, k_max]``.

    Left: the level :func:`roi.multiscale.level_of_boxes` gives a square box of side ``s``
    (``s = sqrt(w h)``) on a log axis from 8 to 2000 pixels: a staircase whose steps sit at
    ``224 * 2 ** (k - 4)`` (112, 224 and 448 for the default clamp), marked. With ``boxes``, each
    box is dotted at its size and level. Right (only with ``boxes`` or ``roi_levels``): how many
    RoIs go to each level.

    Args:
        boxes: optional ``(K, 4)`` RoIs ``x1, y1, x2, y2`` in the resized image's pixels.
        roi_levels: optional ``(K,)`` level indices ``0 .. k_max - k_min`` (``record["roi_levels"]``);
            by default computed from ``boxes``.
        k_min, k_max, canonical_scale, canonical_level: the rule's parameters (torchvision's
            defaults: P2 .. P5, 224 pixels at level 4).
        label: what ``boxes`` are, for the legend and the histogram's title.

    Returns:
        A Figure with 1 Axes, or 2 with ``boxes`` or ``roi_levels``.
    """
    sizes = np.geomspace(8, 2000, 2000).astype(np.float32)
    squares = np.stack([np.zeros_like(sizes), np.zeros_like(sizes), sizes, sizes], 1)
    steps = level_of_boxes(squares, k_min, k_max, canonical_scale, canonical_level) + k_min
    if boxes is not None:
        boxes = as_boxes(boxes, "boxes")
    if roi_levels is not None:
        roi_levels = np.asarray(roi_levels, np.int64).reshape(-1)
        if boxes is not None and len(roi_levels) != len(boxes):
            raise ValueError(
                f"roi_levels must have one entry per box ({len(boxes)}); got {len(roi_levels)}"
            )
    elif boxes is not None:
        roi_levels = level_of_boxes(boxes, k_min, k_max, canonical_scale, canonical_level)
    extra = roi_levels is not None
    fig = Figure(figsize=(11 if extra else 6, 3.8), layout="constrained")
    axes = fig.subplots(1, 2 if extra else 1, squeeze=False)[0]
    ax = axes[0]
    ax.step(sizes, steps, where="post", color="k", lw=1.5, label="level_of_boxes")
    bounds = canonical_scale * 2.0 ** (np.arange(k_min + 1, k_max + 1) - canonical_level)
    for b in bounds:
        ax.axvline(b, color="grey", ls="--", lw=0.8)
        ax.text(b * 1.04, k_min + 0.1, f"{b:g}", fontsize=8, color="grey")
    if boxes is not None and len(boxes):
        side = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        jitter = np.random.default_rng(12345).uniform(-0.15, 0.15, len(side))
        colours = np.asarray(_LEVEL_COLOURS)[np.clip(roi_levels, 0, len(_LEVEL_COLOURS) - 1)]
        ax.scatter(np.maximum(side, 8), roi_levels + k_min + jitter, s=6, c=colours, alpha=0.6,
                   label=label)  # fmt: skip
        ax.legend(fontsize=8, loc="upper left")
    ax.set(xscale="log", xlabel="sqrt(w h) of the RoI (resized-image pixels)", ylabel="level k",
           yticks=range(k_min, k_max + 1),
           yticklabels=[f"P{k}" for k in range(k_min, k_max + 1)])  # fmt: skip
    ax.set_title(
        f"k = floor({canonical_level} + log2(sqrt(wh) / {canonical_scale:g})), "
        f"clamped to {k_min}..{k_max}",
        fontsize=9,
    )
    if extra:
        n = k_max - k_min + 1
        counts = np.bincount(roi_levels, minlength=n)[:n]
        right = axes[1]
        right.bar([f"P{k}" for k in range(k_min, k_max + 1)], counts, color=_LEVEL_COLOURS[:n])
        for k, c in enumerate(counts):
            right.text(k, c, str(c), ha="center", va="bottom", fontsize=8)
        right.set(ylabel=label, title=f"{len(roi_levels)} {label} by level")
    return fig


# ------------------------------------------------------------------------------------ detections


def plot_full_scale_detections(
    image, detections: dict, categories, score_threshold: float = 0.5, mask_alpha: float = 0.4
) -> Figure:
    """Detections on a photograph: boxes with their class names and scores, masks tinted with their
    outline drawn, one colour per detection (COCO has too many classes for a colour each); those
    scoring below ``score_threshold`` are left out.

    Args:
        image: ``H x W x 3`` uint8 or float in ``[0, 1]``, the image the detections are in.
        detections: ``model.predict(image)``: ``"boxes"`` ``(D, 4)`` ``x1, y1, x2, y2`` in the
            image's pixels, ``"labels"`` ``(D,)``, ``"scores"`` ``(D,)``, optional ``"masks"``
            ``(D, H, W)`` bool (or probabilities, cut at 0.5).
        categories: name of each label, index 0 the background (COCO's 91 for torchvision's models).
        score_threshold: the lowest score drawn.
        mask_alpha: opacity of the mask tint.

    Returns:
        A Figure with 1 Axes.
    """
    img = as_rgb_uint8(image).astype(np.float32) / 255
    H, W = img.shape[:2]
    boxes = as_boxes(detections.get("boxes", np.zeros((0, 4))), "detections['boxes']")
    labels = np.asarray(detections.get("labels", np.zeros(len(boxes))), np.int64).reshape(-1)
    scores = as_scores(detections.get("scores", np.ones(len(boxes))), len(boxes),
                       "detections['scores']")  # fmt: skip
    if labels.shape != (len(boxes),):
        raise ValueError(
            f"detections['labels'] must have shape ({len(boxes)},); got {labels.shape}"
        )
    masks = detections.get("masks")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != (len(boxes), H, W):
            raise ValueError(
                f"detections['masks'] must have shape {(len(boxes), H, W)}; got {masks.shape}"
            )
        masks = masks if masks.dtype == bool else masks > 0.5
    keep = np.flatnonzero(scores >= score_threshold)
    colours = [f"C{n % 10}" for n in range(len(keep))]
    if masks is not None:
        for k, colour in zip(keep, colours, strict=True):  # per detection, whole-mask work
            img[masks[k]] = (1 - mask_alpha) * img[masks[k]] + mask_alpha * np.array(to_rgb(colour))
    fig = Figure(figsize=(9, 9 * H / W + 0.4), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(img)
    for k, colour in zip(keep, colours, strict=True):
        if masks is not None and masks[k].any() and not masks[k].all():
            # contoured over the mask's bounding rows and columns (one pixel more each side), with
            # the image's pixel coordinates: the same line, and the figure keeps no whole-image
            # arrays per detection (100 on a 1333 x 1333 photograph held 4.9 GB)
            rows, cols = np.flatnonzero(masks[k].any(axis=1)), np.flatnonzero(masks[k].any(axis=0))
            r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, H)
            c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, W)
            ax.contour(np.arange(c0, c1), np.arange(r0, r1),
                       masks[k][r0:r1, c0:c1].astype(np.float32), levels=[0.5], colors=[colour],
                       linewidths=1.2)  # fmt: skip
        name = categories[labels[k]] if 0 <= labels[k] < len(categories) else str(labels[k])
        draw_boxes(ax, boxes[k][None], color=colour, labels=[f"{name} {scores[k]:.2f}"])
    _off(ax)
    ax.set_title(f"{len(keep)} of {len(boxes)} detections with score >= {score_threshold:g}")
    return fig
