"""Stage 4, Mask R-CNN (He et al., 2017): Faster R-CNN plus a mask branch, on RoIAlign.

    image -> backbone -> features -> RPN -> proposals -> RoIAlign 7 x 7  -> box head -> detections
                                                      -> RoIAlign 14 x 14 -> mask head -> 28 x 28 masks

Two changes from ``faster_rcnn.py``, and nothing else:

1. **RoIAlign** in place of RoI pooling in both heads: the feature map is read by bilinear
   interpolation at the RoI's exact coordinates, never rounded to cells (``roi/worked_example.py``:
   a 15 x 15 object in a 128 x 128 image is 2.93 cells of a 25 x 25 map, not 2). Pixel-accurate masks
   need pixel-accurate features; ``config.pooler = "roi_pool"`` puts the rounding back, for the
   paper's ablation.
2. A **mask head** (``heads/mask_head.py``) on the positive RoIs while training and on the final
   detections at test time: one 28 x 28 binary mask per class, the loss read only on the RoI's
   ground-truth class. Its targets are the ground-truth masks resampled into each RoI
   (``targets/mask_targets.py``). Loss = RPN + box head + mask.

At inference the predicted class picks the mask channel, the 28 x 28 probabilities are resized into
the detection's box and thresholded at 0.5 (``postprocess.paste_masks_in_image``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..conventions import as_rgb_float
from ..heads.mask_head import MaskHead, mask_loss, mask_probabilities
from ..postprocess import paste_masks_in_image
from ..roi.pooler import make_pooler
from ..targets.mask_targets import project_masks_on_boxes
from .faster_rcnn import FasterRCNN, FasterRCNNConfig, _rois

__all__ = ["MaskRCNNConfig", "MaskRCNN", "DEFAULT_WEIGHTS", "ROI_POOL_WEIGHTS", "AGNOSTIC_WEIGHTS"]

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "mask_rcnn_shapes.npz"
# the ablation's other arm: the same training with RoI pooling in both heads
ROI_POOL_WEIGHTS = DEFAULT_WEIGHTS.with_name("mask_rcnn_roipool_shapes.npz")
# the same training with one class-agnostic mask instead of one mask per class
AGNOSTIC_WEIGHTS = DEFAULT_WEIGHTS.with_name("mask_rcnn_agnostic_shapes.npz")


@dataclass(frozen=True)
class MaskRCNNConfig(FasterRCNNConfig):
    """Faster R-CNN's numbers, RoIAlign in both heads, and the mask branch's."""

    pooler: str = "roi_align"  # both heads; "roi_pool" for the ablation
    mask_pooled_size: int = 14  # the mask head doubles it: 28 x 28 masks
    mask_layers: tuple[int, ...] = (32, 32, 32, 32)  # paper: 4 x 256 (on 256-channel features)
    class_agnostic_masks: bool = False
    mask_threshold: float = 0.5


class MaskRCNN(FasterRCNN):
    """Mask R-CNN: ``loss(images, targets, rng)`` (targets with ``"masks"``), :meth:`backward`,
    ``predict(image)`` with masks."""

    model_name = "mask_rcnn"
    config_class = MaskRCNNConfig
    default_weights = DEFAULT_WEIGHTS

    def __init__(self, config: MaskRCNNConfig = MaskRCNNConfig(), seed=0):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        super().__init__(config, seed=rng)
        c = self.config
        self.mask_pooler = make_pooler(c.pooler, c.mask_pooled_size, 1.0 / self.backbone.stride)
        self.mask_head = MaskHead(self.backbone.out_channels, c.num_classes, c.mask_layers,
                                  class_agnostic=c.class_agnostic_masks, rng=rng)  # fmt: skip
        self._mask_grad = None

    def named_parameters(self):
        yield from super().named_parameters()
        yield from (("roi_heads.mask_head." + n, p) for n, p in self.mask_head.named_parameters())

    @property
    def mask_size(self) -> int:
        return 2 * self.config.mask_pooled_size

    def _extra_losses(self, features, sampled, targets) -> dict[str, float]:
        """The mask loss on the positive sampled RoIs of every image."""
        boxes, labels, mask_targets = [], [], []
        for s, t in zip(sampled, targets, strict=True):
            if "masks" not in t:
                raise ValueError(
                    "Mask R-CNN's targets need 'masks' (G, H, W) besides boxes and labels"
                )
            fg = s.labels > 0
            boxes.append(s.proposals[fg])
            labels.append(s.labels[fg])
            mask_targets.append(
                project_masks_on_boxes(
                    t["masks"], s.proposals[fg], s.matched_gt[fg], self.mask_size
                )
            )
        logits = self.mask_head(self.mask_pooler(features, _rois(boxes)))
        out = mask_loss(logits, np.concatenate(labels), np.concatenate(mask_targets))
        self._mask_grad = out.dlogits
        return {"mask": out.loss}

    def _extra_backward(self):
        dlogits, self._mask_grad = self._mask_grad, None
        return self.mask_pooler.backward(self.mask_head.backward(dlogits))

    def predict(self, image) -> dict[str, np.ndarray]:
        """Detections and instance masks of one image, as torchvision's ``MaskRCNN`` gives them.

        Args:
            image: ``H x W x 3`` uint8 (or float in ``[0, 1]``; grayscale and RGBA are converted).

        Returns:
            ``{"boxes": (D, 4) float32, "labels": (D,) int64, "scores": (D,) float32, "masks":
            (D, H, W) bool}``; boxes in image pixels, best first. Stage times go to ``self.timings``.
        """
        image = as_rgb_float(image)
        H, W = image.shape[:2]
        features, out = self._detect(image)
        t0 = time.perf_counter()
        logits = self.mask_head(self.mask_pooler(features, _rois([out["boxes"]])))
        probabilities = mask_probabilities(logits, out["labels"])  # the predicted class's mask
        out["masks"] = paste_masks_in_image(
            probabilities, out["boxes"], (H, W), self.config.mask_threshold
        )
        self.mask_pooler._cache = self.mask_head._cache = None
        self.timings["masks"] = time.perf_counter() - t0
        return out
