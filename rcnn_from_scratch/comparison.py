"""The four stages side by side on the same images: accuracy, training time, test time per stage.

Each stage of the lecture removed a cost of the one before, and this table shows it, measured:

- R-CNN runs the CNN once per *region* (~2000 warped crops);
- Fast R-CNN runs it once per *image* and pools each region from the shared feature map;
- Faster R-CNN replaces selective search (tens of milliseconds of pixel-level work) by a few
  convolutions on those same features;
- Mask R-CNN adds a mask head and pays for it in the "heads" column.

Test time per image is split into **proposals** (selective search, or the RPN), **features** (R-CNN:
warping and the CNN over every crop; the others: one backbone pass) and **heads** (R-CNN: SVMs and
box regression; the others: RoI pooling, the box head, post-processing, and masks). R-CNN and Fast
R-CNN get the *same* selective-search boxes, computed once per image.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from .datasets.shapes import ShapesDataset
from .evaluation import EvaluationResult, evaluate_detections
from .nn import load_weights
from .proposals.selective_search import selective_search

__all__ = [
    "StageResult",
    "compare_detectors",
    "comparison_table",
    "training_seconds",
    "time_detectors",
    "time_on_boxes",
    "timing_table",
]

STAGES = ("R-CNN", "Fast R-CNN", "Faster R-CNN", "Mask R-CNN")
TIMES = ("proposals", "features", "heads")


@dataclass
class StageResult:
    """One row: the stage's name, its box AP, the training time recorded in its weights file, and
    the mean test time per image of each part (seconds)."""

    name: str
    box: EvaluationResult
    train_seconds: float | None
    test_seconds: dict[str, float] = field(default_factory=dict)
    mask: EvaluationResult | None = None

    @property
    def total_test_seconds(self) -> float:
        return float(sum(self.test_seconds.values()))


def training_seconds(path) -> float | None:
    """Seconds of training recorded beside shipped weights (``train`` command), if any.

    Counts the cached selective-search time of R-CNN and Fast R-CNN too: it is part of their training.
    """
    _, config = load_weights(path)
    if "training" not in config:
        return None
    return float(sum(json.loads(config["training"])["seconds"].values()))


def _load(name: str):
    """The shipped model of a stage, and its weights file."""
    if name == "R-CNN":
        from .models.rcnn import DEFAULT_WEIGHTS, RCNN

        return RCNN.load(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS
    if name == "Fast R-CNN":
        from .models.fast_rcnn import DEFAULT_WEIGHTS, FastRCNN

        return FastRCNN.load(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS
    if name == "Faster R-CNN":
        from .models.faster_rcnn import DEFAULT_WEIGHTS, FasterRCNN

        return FasterRCNN.load(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS
    if name == "Mask R-CNN":
        from .models.mask_rcnn import DEFAULT_WEIGHTS, MaskRCNN

        return MaskRCNN.load(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS
    raise ValueError(f"unknown stage {name!r}; choose from {STAGES}")


def _run(name: str, model, image, proposals) -> tuple[dict, dict[str, float]]:
    """Detections of one image and the seconds of each part (proposals timed by the caller for the
    two selective-search stages)."""
    if name == "R-CNN":
        t0 = time.perf_counter()
        feats = model.features(model.warp(image, proposals))
        t1 = time.perf_counter()
        out = model.detect(image, proposals, feats)
        return out, {"features": t1 - t0, "heads": time.perf_counter() - t1}
    if name == "Fast R-CNN":
        out = model.detect(image, proposals)
        return out, {"features": model.timings["features"], "heads": model.timings["heads"]}
    out = model.predict(image)
    t = model.timings
    return out, {"proposals": t["proposals"], "features": t["features"],
                 "heads": t["heads"] + t.get("masks", 0.0)}  # fmt: skip


def compare_detectors(
    num_images: int = 200, stages=STAGES, image_size: int | None = None,
    max_objects: int | None = None,
) -> list[StageResult]:  # fmt: skip
    """Run the shipped model of each stage on the same evaluation images.

    Args:
        num_images: evaluation images (``ShapesDataset("eval")``; the issue's figure is 200).
        stages: which of ``"R-CNN"``, ``"Fast R-CNN"``, ``"Faster R-CNN"``, ``"Mask R-CNN"``.
        image_size, max_objects: larger generated images to show how the gaps grow with the image
            (the models were trained on 128 x 128; their AP there is not the point).

    Returns:
        One :class:`StageResult` per stage, in order.
    """
    stages = list(stages)
    models = {name: _load(name) for name in stages}
    dataset = ShapesDataset("eval", size=num_images, image_size=image_size, max_objects=max_objects)
    needs_boxes = {"R-CNN", "Fast R-CNN"} & set(stages)
    predictions = {name: [] for name in stages}
    times = {name: [] for name in stages}
    targets = []
    for image, target in dataset:
        targets.append(target)
        proposals, proposal_time = None, 0.0
        if needs_boxes:
            t0 = time.perf_counter()
            proposals = selective_search(image, mode="fast")
            proposal_time = time.perf_counter() - t0
        for name in stages:
            out, t = _run(name, models[name][0], image, proposals)
            t.setdefault("proposals", proposal_time)
            predictions[name].append(out)
            times[name].append(t)
    results = []
    for name in stages:
        mean = {k: float(np.mean([t[k] for t in times[name]])) for k in TIMES}
        mask = None
        if name == "Mask R-CNN":
            mask = evaluate_detections(predictions[name], targets, iou_type="segm")
        results.append(StageResult(
            name, evaluate_detections(predictions[name], targets, iou_type="bbox"),
            training_seconds(models[name][1]), mean, mask,
        ))  # fmt: skip
    return results


def comparison_table(results: list[StageResult]) -> str:
    """A Markdown table of :func:`compare_detectors`' results, with each stage's test-time speed-up
    over the one before it: in all, and without the proposals (how the Fast R-CNN paper counted its
    146x: selective search was outside its timings)."""
    head = ("| stage | box AP@0.5 | AP@0.75 | mAP | mask AP@0.5 | training | proposals | features "
            "| heads | test / image | speed-up | without proposals |")  # fmt: skip
    lines = [head, "|" + "---|" * 12]
    previous = None
    for r in results:
        ms = {k: f"{1000 * r.test_seconds[k]:.1f} ms" for k in TIMES}
        train = "-" if r.train_seconds is None else f"{r.train_seconds / 60:.1f} min"
        network = r.test_seconds["features"] + r.test_seconds["heads"]
        speedup = ["", ""]
        if previous is not None:
            speedup = [
                f"{previous[0] / r.total_test_seconds:.1f}x",
                f"{previous[1] / network:.1f}x",
            ]
        mask = "-" if r.mask is None else f"{r.mask.map50:.3f}"
        lines.append(
            f"| {r.name} | {r.box.map50:.3f} | {r.box.map75:.3f} | {r.box.map:.3f} | {mask} | "
            f"{train} | {ms['proposals']} | {ms['features']} | {ms['heads']} | "
            f"{1000 * r.total_test_seconds:.1f} ms | {speedup[0]} | {speedup[1]} |"
        )
        previous = (r.total_test_seconds, network)
    return "\n".join(lines)


def time_detectors(images, stages=STAGES) -> dict[str, dict[str, float]]:
    """Mean seconds per image of each part, for each stage, on any images (no labels needed).

    For photographs: selective search finds thousands of regions there (the papers' ~2,000), where
    on the generated shapes it finds tens, so R-CNN's per-region CNN and selective search itself
    show their real cost. The detections are not the point (the shipped models know only shapes).

    Returns:
        ``{stage: {"proposals", "features", "heads", "regions"}}``, seconds and the mean number of
        selective-search regions per image.
    """
    stages = list(stages)
    models = {name: _load(name)[0] for name in stages}
    times = {name: [] for name in stages}
    regions = []
    for image in images:
        t0 = time.perf_counter()
        proposals = selective_search(image, mode="fast")
        proposal_time = time.perf_counter() - t0
        regions.append(len(proposals))
        for name in stages:
            _, t = _run(name, models[name], image, proposals)
            t.setdefault("proposals", proposal_time)
            times[name].append(t)
    return {
        name: {**{k: float(np.mean([t[k] for t in times[name]])) for k in TIMES},
               "regions": float(np.mean(regions))}
        for name in stages
    }  # fmt: skip


def time_on_boxes(image, boxes, proposal_seconds: float, stages=STAGES[:3]) -> dict[str, dict]:
    """Seconds of each part of each stage on one image, R-CNN and Fast R-CNN given the same boxes.

    The lecture's cost story: R-CNN's top 2,000 selective-search boxes through its CNN, Fast R-CNN's
    one backbone pass plus RoI pooling of the same boxes, Faster R-CNN's RPN instead of them.

    Args:
        image: ``H x W x 3`` uint8 (or float in ``[0, 1]``).
        boxes: ``(R, 4)`` selective-search boxes ``x1, y1, x2, y2`` in the image's pixels (e.g. the
            top 2,000 of :func:`selective_search`).
        proposal_seconds: what computing ``boxes`` took; the "proposals" time of the two stages that
            use them (Faster R-CNN's is its RPN's, measured here).
        stages: any of ``"R-CNN"``, ``"Fast R-CNN"``, ``"Faster R-CNN"``, ``"Mask R-CNN"``.

    Returns:
        ``{stage: {"proposals", "features", "heads"}}`` in seconds, stages in the given order.
    """
    if not np.isfinite(proposal_seconds) or proposal_seconds < 0:
        raise ValueError(
            f"proposal_seconds must be a non-negative number; got {proposal_seconds!r}"
        )
    boxes = np.asarray(boxes, np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (R, 4); got {boxes.shape}")
    result = {}
    for name in stages:
        _, t = _run(name, _load(name)[0], image, boxes)
        t.setdefault("proposals", float(proposal_seconds))
        result[name] = {k: float(t[k]) for k in TIMES}
    return result


def timing_table(times: dict[str, dict[str, float]]) -> str:
    """A Markdown table of :func:`time_detectors`' results with the speed-ups stage to stage."""
    lines = ["| stage | proposals | features | heads | test / image | speed-up | without proposals |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    previous = None
    for name, t in times.items():
        total, network = t["proposals"] + t["features"] + t["heads"], t["features"] + t["heads"]
        speedup = ["", ""]
        if previous is not None:
            speedup = [f"{previous[0] / total:.1f}x", f"{previous[1] / network:.1f}x"]
        lines.append(
            f"| {name} | {1000 * t['proposals']:.1f} ms | {1000 * t['features']:.1f} ms | "
            f"{1000 * t['heads']:.1f} ms | {1000 * total:.1f} ms | {speedup[0]} | {speedup[1]} |"
        )
        previous = (total, network)
    return "\n".join(lines)


def _main() -> (
    None
):  # pragma: no cover - a convenience for `python -m rcnn_from_scratch.comparison`
    results = compare_detectors()
    print(comparison_table(results))


if __name__ == "__main__":  # pragma: no cover
    _main()
