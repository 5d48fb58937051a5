"""The demo: one generated image through all four stages, the pyramid in miniature, then a photograph.

Each step is a small function ``step(out_dir, sample, rng) -> str`` that saves its figures and returns
a one-line result; :func:`run_demo` times the steps and prints a table. Every model is the shipped
one (``data/``), so the demo trains nothing and downloads nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .boxes import box_iou, nms
from .datasets.shapes import CLASS_NAMES, ShapesDataset, make_shapes_sample
from .roi.worked_example import mask_through_roi, worked_example
from .viz.anchors import plot_rpn_proposals
from .viz.boxes import plot_iou, plot_nms
from .viz.detection import plot_feature_maps, plot_roi_pool_on_image
from .viz.interpolation import plot_bilinear_weights, plot_interpolation_error
from .viz.masks import plot_mask_through_roi
from .viz.proposals import plot_proposals, plot_warps
from .viz.roi import plot_pooled_vs_aligned, plot_roi_grids
from .viz.shapes import draw_detections

__all__ = ["jittered_candidates", "run_demo"]

# the demo's multi-scale image: evaluation image 1 (six objects, four of them small)
_MULTISCALE_IMAGE = 1


def jittered_candidates(boxes, per_box: int, rng: np.random.Generator, scale: float = 0.15):
    """Fake detector output: ``per_box`` noisy copies of each box, scored by how close they stay.

    Args:
        boxes: ``(G, 4)`` ground-truth boxes ``x1, y1, x2, y2``.
        per_box: candidates per box.
        rng: the random generator.
        scale: standard deviation of the corner noise, relative to the box's size.

    Returns:
        ``(boxes (G * per_box, 4) float32, scores (G * per_box,) float32)``; a score is the IoU of
        the candidate with its source box plus a little noise, as a detector's confidence would be.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = np.repeat(np.hstack([b[:, 2:] - b[:, :2]] * 2), per_box, axis=0)
    source = np.repeat(b, per_box, axis=0)
    noisy = source + rng.normal(0, scale, source.shape) * size
    noisy = np.hstack(
        [np.minimum(noisy[:, :2], noisy[:, 2:]), np.maximum(noisy[:, :2], noisy[:, 2:])]
    )
    iou = np.diag(box_iou(noisy, source)) if len(b) else np.zeros(0)
    scores = np.clip(iou + rng.normal(0, 0.05, len(iou)), 0, 1)
    return noisy.astype(np.float32), scores.astype(np.float32)


def _step_nms(out: Path, sample, rng: np.random.Generator) -> str:
    image, target = make_shapes_sample(int(rng.integers(0, 10**6)))
    while len(target["labels"]) < 3:  # a busier image shows NMS better
        image, target = make_shapes_sample(int(rng.integers(0, 10**6)))
    boxes, scores = jittered_candidates(target["boxes"], 12, rng)
    keep = nms(boxes, scores, 0.5)
    plot_nms(image, boxes, scores, 0.5).savefig(out / "0_nms.png", dpi=110)
    best = box_iou(target["boxes"], boxes[keep]).max(axis=1) if len(keep) else np.zeros(0)
    plot_iou(target["boxes"][0], boxes[keep[0]]).savefig(out / "0_iou.png", dpi=110)
    return (
        f"{len(boxes)} candidates -> {len(keep)} kept; best IoU with each of the "
        f"{len(target['boxes'])} objects: {', '.join(f'{v:.2f}' for v in best)}"
    )


def _step_interpolation(out: Path, sample, rng: np.random.Generator) -> str:
    plot_bilinear_weights().savefig(out / "0_bilinear_weights.png", dpi=110)
    plot_interpolation_error().savefig(out / "0_interpolation_error.png", dpi=110)
    return "the four-neighbour weights and the error of nearest versus bilinear sampling"


def _busy_sample(rng: np.random.Generator, min_objects: int = 3):
    image, target = make_shapes_sample(int(rng.integers(0, 10**6)))
    while len(target["labels"]) < min_objects:
        image, target = make_shapes_sample(int(rng.integers(0, 10**6)))
    return image, target


def _ms(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in timings.items())


def _found(detections: dict, threshold: float = 0.5) -> str:
    labels = detections["labels"][detections["scores"] >= threshold]
    counts = [f"{(labels == k).sum()} {CLASS_NAMES[k]}" for k in np.unique(labels)]
    return f"{len(labels)} found ({', '.join(counts) or 'none'})"


def _step_rcnn(out: Path, sample, rng: np.random.Generator) -> str:
    from .models.rcnn import RCNN

    model = RCNN.pretrained()
    image, target = sample
    detections = model.predict(image)
    boxes = model.propose(image)
    plot_proposals(image, boxes, n=(5, len(boxes)), gt_boxes=target["boxes"]).savefig(
        out / "1_rcnn_proposals.png", dpi=110
    )
    plot_warps(image, target["boxes"][0], size=model.config.crop_size, padding=2).savefig(
        out / "1_rcnn_warps.png", dpi=110
    )
    draw_detections(image, detections, score_threshold=0.0, ground_truth=target).savefig(
        out / "1_rcnn_detections.png", dpi=110
    )
    return f"{len(boxes)} proposals -> {_found(detections, 0.0)}; {_ms(model.timings)}"


def _step_fast_rcnn(out: Path, sample, rng: np.random.Generator) -> str:
    from .models.fast_rcnn import FastRCNN, images_to_tensor

    model = FastRCNN.pretrained()
    image, target = sample
    detections = model.predict(image)
    features = model.backbone(images_to_tensor([image]))
    model.backbone._cache = None
    plot_feature_maps(image, features).savefig(out / "2_fast_rcnn_features.png", dpi=110)
    plot_roi_pool_on_image(image, target["boxes"][0]).savefig(
        out / "2_fast_rcnn_roi_pool.png", dpi=110
    )
    draw_detections(image, detections, score_threshold=0.5, ground_truth=target).savefig(
        out / "2_fast_rcnn_detections.png", dpi=110
    )
    return f"{_found(detections)}; {_ms(model.timings)}"


def _step_roi(out: Path, sample, rng: np.random.Generator) -> str:
    image, target = sample
    plot_roi_grids().savefig(out / "4_roi_grids.png", dpi=110)
    plot_pooled_vs_aligned(image, target["boxes"][0]).savefig(
        out / "4_roi_pool_vs_align.png", dpi=110
    )
    example = mask_through_roi()
    plot_mask_through_roi(example).savefig(out / "4_worked_example_mask.png", dpi=110)
    ex = worked_example(128, 15, 25)
    return (
        f"15 x 15 RoI, 128 -> 25 map: {ex.roi_cells:.2f} cells; RoI pooling keeps "
        f"{ex.pooled_cells}, loses {ex.lost_cells:.2f}; RoIAlign keeps {ex.roi_cells:.2f}; "
        f"a disc's mask read back: IoU {example.iou_pooled:.2f} against {example.iou_aligned:.2f}"
    )


def _step_faster_rcnn(out: Path, sample, rng: np.random.Generator) -> str:
    from .models.faster_rcnn import FasterRCNN
    from .proposals.proposal_layer import ProposalConfig, select_proposals

    model = FasterRCNN.pretrained()
    image, target = sample
    anchors, objectness, deltas, _ = model.rpn_outputs(image)
    before, _ = select_proposals(objectness, deltas, anchors, image.shape[:2],
                                 ProposalConfig(500, 500, nms_thresh=1.0))  # fmt: skip
    after, _ = select_proposals(objectness, deltas, anchors, image.shape[:2],
                                ProposalConfig(500, 100, nms_thresh=0.7))  # fmt: skip
    plot_rpn_proposals(image, before, after, show=40).savefig(out / "3_rpn_proposals.png", dpi=110)
    detections = model.predict(image)
    draw_detections(image, detections, score_threshold=0.5, ground_truth=target).savefig(
        out / "3_faster_rcnn_detections.png", dpi=110
    )
    return f"{len(anchors)} anchors -> {len(after)} proposals -> {_found(detections)}; {_ms(model.timings)}"


def _step_mask_rcnn(out: Path, sample, rng: np.random.Generator) -> str:
    from .models.mask_rcnn import MaskRCNN

    model = MaskRCNN.pretrained()
    image, target = sample
    detections = model.predict(image)
    draw_detections(image, detections, score_threshold=0.5, ground_truth=target).savefig(
        out / "4_mask_rcnn_masks.png", dpi=110
    )
    return f"{_found(detections)} with masks; {_ms(model.timings)}"


def _step_feature_pyramid(out: Path, sample, rng: np.random.Generator) -> str:
    """The pyramid in miniature: one multi-scale shapes image through both arms of the backbone
    ablation (``MaskRCNNFPN``), side by side, and how many of its small objects each finds."""
    from matplotlib.figure import Figure

    from .models.mask_rcnn_fpn import MaskRCNNFPN
    from .viz.feature_pyramid import SMALL, object_areas, objects_found

    image, target = ShapesDataset("eval", size=_MULTISCALE_IMAGE + 1, variant="multiscale")[
        _MULTISCALE_IMAGE
    ]
    small = object_areas([target]) < SMALL
    fig = Figure(figsize=(10, 5), layout="constrained")
    found = {}
    for k, (arm, title) in enumerate((("single_level", "one map, stride 32"), ("fpn", "FPN"))):
        detections = MaskRCNNFPN.pretrained(arm).predict(image)
        hit = objects_found(detections, target)
        found[arm] = (int(hit.sum()), int(hit[small].sum()))
        ax = fig.add_subplot(1, 2, k + 1)
        draw_detections(image, detections, ax=ax, score_threshold=0.5, ground_truth=target)
        ax.set_title(f"{title}: {found[arm][0]} of {len(hit)} found, {found[arm][1]} of "
                     f"{int(small.sum())} small")  # fmt: skip
    fig.savefig(out / "5_feature_pyramid.png", dpi=110)
    (s_all, s_small), (f_all, f_small) = found["single_level"], found["fpn"]
    return (
        f"256 x 256, {len(small)} objects ({int(small.sum())} small): one map finds {s_all} "
        f"({s_small} small), the pyramid {f_all} ({f_small} small)"
    )


def _step_photograph(out: Path, sample, rng: np.random.Generator) -> str:
    from skimage import data
    from skimage.transform import resize

    from .models.mask_rcnn import MaskRCNN
    from .proposals.selective_search import selective_search

    photo = (resize(data.astronaut(), (256, 256), anti_aliasing=True) * 255).astype(np.uint8)
    start = time.perf_counter()
    boxes = selective_search(photo, mode="fast")
    seconds = time.perf_counter() - start
    plot_proposals(photo, boxes, n=(10, 200, len(boxes))).savefig(
        out / "5_photo_proposals.png", dpi=110
    )
    model = MaskRCNN.pretrained()
    detections = model.predict(photo)
    draw_detections(photo, detections, score_threshold=0.5).savefig(
        out / "5_photo_mask_rcnn.png", dpi=110
    )
    return (
        f"astronaut (256 x 256): {len(boxes)} selective-search boxes in {seconds:.2f} s; the shapes "
        f"model {_found(detections)} (it knows only circles, squares and triangles)"
    )


def _step_full_scale(out: Path, sample, rng: np.random.Generator) -> str:
    """torchvision's COCO Mask R-CNN (ResNet-50-FPN) in NumPy on the astronaut, when its published
    weights file is in our or torch's cache folder; otherwise one line on how to get it."""
    from skimage import data

    from .checkpoints.torchvision import PUBLISHED, find_weights
    from .models.resnet_fpn import maskrcnn_resnet50_fpn
    from .viz.pyramid import plot_full_scale_detections

    name = "maskrcnn_resnet50_fpn"
    path = find_weights(name)
    if path is None:
        return (
            f"skipped: {PUBLISHED[name].filename} is not in a cache folder; `python -m "
            f"rcnn_from_scratch fetch-weights {name}` gets it (170 MB), then run the demo again"
        )
    model = maskrcnn_resnet50_fpn(weights=path)
    photo = data.astronaut()
    detections = model.predict(photo)
    keep = detections["scores"] >= 0.5
    shown = {k: v[keep] for k, v in detections.items()}
    plot_full_scale_detections(photo, shown, model.categories, 0.5).savefig(
        out / "6_photo_maskrcnn_resnet50_fpn.png", dpi=110
    )
    names = ", ".join(sorted({model.categories[k] for k in shown["labels"]})) or "nothing"
    return (
        f"astronaut (512 x 512): {int(keep.sum())} COCO detections (score >= 0.5: {names}) in "
        f"{model.timings['total']:.1f} s"
    )


STEPS: list[tuple[str, Callable]] = [
    ("IoU and NMS on a generated image", _step_nms),
    ("bilinear interpolation", _step_interpolation),
    ("stage 1, R-CNN", _step_rcnn),
    ("stage 2, Fast R-CNN", _step_fast_rcnn),
    ("stage 3, Faster R-CNN", _step_faster_rcnn),
    ("RoI pooling versus RoIAlign", _step_roi),
    ("stage 4, Mask R-CNN", _step_mask_rcnn),
    ("the feature pyramid in miniature", _step_feature_pyramid),
    ("a real photograph", _step_photograph),
    ("the real Mask R-CNN (ResNet-50-FPN)", _step_full_scale),
]


def run_demo(out_dir: str | Path = "rcnn_demo_output", seed: int = 0) -> Path:
    """Walk one generated shapes image (and then a photograph) through every stage with the shipped
    weights, save each figure as a PNG under ``out_dir`` and print a table of times and results."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sample = _busy_sample(np.random.default_rng(seed))  # the one image every stage sees
    print(f"rcnn-from-scratch demo: figures go to {out.resolve()}\n")
    print(f"{'step':34s} {'time':>7s}  result")
    for name, step in STEPS:
        start = time.perf_counter()
        result = step(out, sample, rng)
        print(f"{name:34s} {time.perf_counter() - start:6.2f}s  {result}")
    print(f"\nsaved: {', '.join(sorted(p.name for p in out.glob('*.png')))}")
    return out
