"""The demo: walk generated images through what the package has, saving each figure as a PNG.

Each step is a small function ``step(out_dir, rng) -> str`` that saves its figures and returns a
one-line result; :func:`run_demo` times the steps and prints a table. Later stages add steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .boxes import box_iou, nms
from .datasets.shapes import make_shapes_sample
from .models.rcnn import DEFAULT_WEIGHTS, RCNN
from .roi.worked_example import worked_example
from .viz.boxes import plot_iou, plot_nms
from .viz.interpolation import plot_bilinear_weights, plot_interpolation_error
from .viz.proposals import plot_proposals, plot_warps
from .viz.roi import plot_pooled_vs_aligned, plot_roi_grids
from .viz.shapes import draw_detections

__all__ = ["jittered_candidates", "run_demo"]


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


def _step_nms(out: Path, rng: np.random.Generator) -> str:
    image, target = make_shapes_sample(int(rng.integers(0, 10**6)))
    while len(target["labels"]) < 3:  # a busier image shows NMS better
        image, target = make_shapes_sample(int(rng.integers(0, 10**6)))
    boxes, scores = jittered_candidates(target["boxes"], 12, rng)
    keep = nms(boxes, scores, 0.5)
    plot_nms(image, boxes, scores, 0.5).savefig(out / "nms.png", dpi=110)
    best = box_iou(target["boxes"], boxes[keep]).max(axis=1) if len(keep) else np.zeros(0)
    plot_iou(target["boxes"][0], boxes[keep[0]]).savefig(out / "iou.png", dpi=110)
    return (
        f"{len(boxes)} candidates -> {len(keep)} kept; best IoU with each of the "
        f"{len(target['boxes'])} objects: {', '.join(f'{v:.2f}' for v in best)}"
    )


def _step_interpolation(out: Path, rng: np.random.Generator) -> str:
    plot_bilinear_weights().savefig(out / "bilinear_weights.png", dpi=110)
    plot_interpolation_error().savefig(out / "interpolation_error.png", dpi=110)
    return "the four-neighbour weights and the error of nearest versus bilinear sampling"


def _busy_sample(rng: np.random.Generator, min_objects: int = 3):
    image, target = make_shapes_sample(int(rng.integers(0, 10**6)))
    while len(target["labels"]) < min_objects:
        image, target = make_shapes_sample(int(rng.integers(0, 10**6)))
    return image, target


def _step_rcnn(out: Path, rng: np.random.Generator) -> str:
    if not DEFAULT_WEIGHTS.exists():
        return "skipped: no shipped R-CNN weights in data/"
    model = RCNN.pretrained()
    image, target = _busy_sample(rng)
    detections = model.predict(image)
    boxes = model.propose(image)
    plot_proposals(image, boxes, n=(5, len(boxes)), gt_boxes=target["boxes"]).savefig(
        out / "rcnn_proposals.png", dpi=110
    )
    plot_warps(image, target["boxes"][0], size=model.config.crop_size, padding=2).savefig(
        out / "rcnn_warps.png", dpi=110
    )
    draw_detections(image, detections, score_threshold=0.0, ground_truth=target).savefig(
        out / "rcnn_detections.png", dpi=110
    )
    times = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in model.timings.items())
    found = int((detections["scores"] > 0).sum())
    return f"{len(boxes)} proposals -> {found} detections (score > 0); {times}"


def _step_roi(out: Path, rng: np.random.Generator) -> str:
    plot_roi_grids().savefig(out / "roi_grids.png", dpi=110)
    image, target = _busy_sample(rng, 1)
    plot_pooled_vs_aligned(image, target["boxes"][0]).savefig(
        out / "roi_pool_vs_align.png", dpi=110
    )
    ex = worked_example(128, 15, 25)
    return (
        f"15 x 15 RoI, 128 -> 25 map: {ex.roi_cells:.2f} cells; RoI pooling keeps "
        f"{ex.pooled_cells}, loses {ex.lost_cells:.2f}; RoIAlign keeps {ex.roi_cells:.2f}"
    )


STEPS: list[tuple[str, Callable[[Path, np.random.Generator], str]]] = [
    ("IoU and NMS on a generated image", _step_nms),
    ("bilinear interpolation", _step_interpolation),
    ("stage 1, R-CNN (shipped weights)", _step_rcnn),
    ("RoI pooling versus RoIAlign", _step_roi),
]


def run_demo(out_dir: str | Path = "rcnn_demo_output", seed: int = 0) -> Path:
    """Run every demo step, save its figures under ``out_dir`` and print a table of times."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    print(f"rcnn-from-scratch demo: figures go to {out.resolve()}\n")
    print(f"{'step':36s} {'time':>8s}  result")
    for name, step in STEPS:
        start = time.perf_counter()
        result = step(out, rng)
        print(f"{name:36s} {time.perf_counter() - start:7.2f}s  {result}")
    print(f"\nsaved: {', '.join(sorted(p.name for p in out.glob('*.png')))}")
    return out
