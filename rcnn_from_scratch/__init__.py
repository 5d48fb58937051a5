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
