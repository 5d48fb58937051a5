"""rcnn-from-scratch: the R-CNN family in pure NumPy, written to be taught from.

Ops that torchvision also has keep its names, signatures and semantics, so what is learned here
carries over 1:1. The conventions (box format, pixel frame, image rules) are in ``conventions.py``.
"""

__version__ = "0.1.0"

from .bilinear import bilinear_interpolate, bilinear_interpolate_backward
from .box_coder import BoxCoder
from .boxes import (
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    nms,
    nms_reference,
    remove_small_boxes,
)
from .checkpoints.torchvision import read_torch_checkpoint
from .datasets.shapes import CLASS_NAMES, ShapesDataset, make_shapes_sample
from .evaluation import EvaluationResult, evaluate_detections
from .models.fast_rcnn import FastRCNN
from .models.faster_rcnn import FasterRCNN
from .models.mask_rcnn import MaskRCNN
from .models.mask_rcnn_fpn import MaskRCNNFPN
from .models.rcnn import RCNN
from .models.resnet_fpn import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn
from .proposals.anchors import AnchorGenerator
from .proposals.selective_search import selective_search
from .roi.roi_align import RoIAlign, roi_align
from .roi.roi_pool import RoIPool, roi_pool
from .roi.warp import warp_region

__all__ = [
    "AnchorGenerator",
    "BoxCoder",
    "CLASS_NAMES",
    "EvaluationResult",
    "FastRCNN",
    "FasterRCNN",
    "MaskRCNN",
    "MaskRCNNFPN",
    "RCNN",
    "RoIAlign",
    "RoIPool",
    "ShapesDataset",
    "batched_nms",
    "bilinear_interpolate",
    "bilinear_interpolate_backward",
    "box_area",
    "box_iou",
    "clip_boxes_to_image",
    "evaluate_detections",
    "fasterrcnn_resnet50_fpn",
    "make_shapes_sample",
    "maskrcnn_resnet50_fpn",
    "nms",
    "nms_reference",
    "read_torch_checkpoint",
    "remove_small_boxes",
    "roi_align",
    "roi_pool",
    "selective_search",
    "warp_region",
]
