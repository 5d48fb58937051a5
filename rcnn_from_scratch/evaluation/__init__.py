"""Evaluation with pycocotools' ``COCOeval`` semantics: average precision for boxes and masks
(``coco.py``), and by object size with the RPN's recall (``by_size.py``)."""

from .by_size import evaluate_by_size, object_areas, proposal_recall
from .coco import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    EvaluationResult,
    average_precision,
    evaluate_detections,
    format_results,
    mask_iou,
    match_detections,
    match_detections_reference,
    match_detections_with_ignore,
)

__all__ = [
    "IOU_THRESHOLDS", "RECALL_THRESHOLDS", "AREA_RANGES", "EvaluationResult", "evaluate_detections",
    "mask_iou", "match_detections", "match_detections_reference", "match_detections_with_ignore",
    "average_precision", "format_results", "object_areas", "evaluate_by_size", "proposal_recall",
]  # fmt: skip
