"""Training and measuring the small Mask R-CNN over a feature pyramid, and its single-level arm.

    python -m rcnn_from_scratch train mask-rcnn-fpn --arm fpn --out FILE [--minutes 30] ...

goes through the Faster / Mask R-CNN loop (:func:`~.faster_rcnn.train_detector`: Adam, checkpoints,
resume, time budget, progress, NaN stop) on the multi-scale shapes, then records what the FPN and
Mask R-CNN papers measure: box and mask AP (AP@0.5, AP@0.75, and AP for small, medium and large
objects on the mask area) and the RPN's recall at IoU 0.5 and 0.7 for 100 / 300 / 1000 proposals,
per size. The record is kept in the weights file (``training_record`` reads it back).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..datasets.shapes import ShapesDataset
from ..evaluation import evaluate_by_size, proposal_recall
from ..models.mask_rcnn_fpn import ARMS, MaskRCNNFPN, MaskRCNNFPNConfig
from .faster_rcnn import remove_stale_temporaries, train_detector

__all__ = ["build_mask_rcnn_fpn", "evaluate_pyramid", "train_and_save_pyramid", "RECALL_TOP_N"]

RECALL_TOP_N = (100, 300, 1000)


def build_mask_rcnn_fpn(arm: str = "fpn", seed: int = 0, **config) -> MaskRCNNFPN:
    """The model of one arm (``"fpn"`` or ``"single_level"``) with the default numbers (``config``
    overrides fields of :class:`MaskRCNNFPNConfig`, e.g. for a tiny smoke test)."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}; got {arm!r}")
    return MaskRCNNFPN(MaskRCNNFPNConfig(arm=arm, **config), seed=seed)


def evaluate_pyramid(model: MaskRCNNFPN, num_images: int = 200) -> dict:
    """AP by size and the RPN's recall by size on the multi-scale evaluation images.

    Returns:
        A JSON-ready dict: ``"bbox"`` and ``"segm"``, each ``{"all" | "small" | "medium" |
        "large": {"map", "map50", "map75"}}``; ``"rpn_recall"``: ``{size: {"100": {"0.5": r,
        "0.7": r}, ...}}``; ``"test_seconds_per_image"`` by stage (``nan`` marks a missing value).
    """
    dataset = ShapesDataset("eval", size=num_images, variant="multiscale")
    predictions, proposals, targets, timings = [], [], [], []
    for image, target in dataset:
        predictions.append(model.predict(image))
        timings.append(dict(model.timings))
        proposals.append(model.propose(image, top_n=max(RECALL_TOP_N)))
        targets.append(target)
    out = {}
    for iou_type in ("bbox", "segm"):
        by_size = evaluate_by_size(predictions, targets, iou_type)
        out[iou_type] = {
            size: {name: _round(getattr(r, name)) for name in ("map", "map50", "map75")}
            for size, r in by_size.items()
        }
    recall = proposal_recall(proposals, targets, RECALL_TOP_N, (0.5, 0.7))
    out["rpn_recall"] = {
        size: {str(n): {str(t): _round(v) for t, v in by_t.items()} for n, by_t in by_n.items()}
        for size, by_n in recall.items()
    }
    out["test_seconds_per_image"] = {
        k: round(float(np.mean([t[k] for t in timings])), 4) for k in timings[0]
    }
    return out


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def train_and_save_pyramid(
    model: MaskRCNNFPN, out, command: str, eval_images: int = 200, **kwargs
) -> dict:
    """Train (:func:`~.faster_rcnn.train_detector`'s keywords), evaluate with
    :func:`evaluate_pyramid`, and save the weights with the record (command, report, figures, loss
    curves). The checkpoint sits beside ``out`` as ``<stem>.checkpoint.npz``. Returns the record."""
    out = Path(out)
    checkpoint = out.with_name(out.stem + ".checkpoint.npz")
    remove_stale_temporaries(out)  # a killed run's half-written weights file
    report = train_detector(model, checkpoint=checkpoint, **kwargs)
    history = report.pop("history")
    report.update(command=command, arm=model.config.arm, eval_images=eval_images)
    report.update(evaluate_pyramid(model, eval_images) if eval_images else {})
    names = history[0] if history else {}  # a spent time budget may have run no step
    curves = {k: np.array([h[k] for h in history], np.float32) for k in names}
    model.save(out, extra={"training": json.dumps(report)}, arrays=curves)
    print(json.dumps(report, indent=1))
    print(f"saved {out} (checkpoint {checkpoint})")
    return report
