"""Stage 2, Fast R-CNN (Girshick, 2015): one CNN pass per image, RoI pooling, one multi-task head.

    image -> backbone (once) -> feature map (N, C, H/8, W/8)
    selective-search proposals -> RoI pooling on the feature map -> (K, C, 7, 7)
    -> box head -> class scores (K, K_cls + 1) and class-specific box deltas (K, 4 (K_cls + 1))

Against R-CNN: the CNN runs once per image instead of once per region; classification and box
regression are learned together by one loss (no SVMs, no separate regressors); the whole network is
trained end to end, the backbone included, through RoI pooling's backward.

The model is assembly: the backbone, the RoI operator, the box head, the targets and the
post-processing each live in their own module. ``loss()`` and ``predict()`` are separate; the
backward is written out in reverse order in :meth:`FastRCNN.backward`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backbones.convnet import make_backbone
from ..box_coder import BoxCoder
from ..conventions import as_rgb_float
from ..heads.box_head import BoxHead, fast_rcnn_loss
from ..postprocess import postprocess_detections
from ..proposals.selective_search import selective_search
from ..roi.pooler import make_pooler
from ..targets.roi_targets import sample_roi_targets
from .saved_model import SavedModel, validate_config

__all__ = ["FastRCNNConfig", "FastRCNN", "DEFAULT_WEIGHTS", "images_to_tensor"]

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "fast_rcnn_shapes.npz"


@dataclass(frozen=True)
class FastRCNNConfig:
    """Fast R-CNN's numbers; the paper's values are noted where ours differ."""

    num_classes: int = 3
    channels: tuple[int, ...] = (16, 32, 64)  # backbone stages; stride 2 ** len(channels)
    pooler: str = "roi_pool"  # "roi_align" for the Mask R-CNN ablation
    pooled_size: int = 7
    hidden: int = 256  # paper: 4096 (VGG16's fc6, fc7)
    rois_per_image: int = 64  # paper: 2 images x 64 RoIs
    positive_fraction: float = 0.25
    fg_iou: float = 0.5
    bg_iou_low: float = 0.1  # paper: background IoU in [0.1, 0.5)
    smooth_l1_beta: float = 1.0  # paper: 1
    score_thresh: float = 0.05
    nms_thresh: float = 0.3  # paper: 0.3
    detections_per_img: int = 100
    proposal_mode: str = "fast"

    def __post_init__(self):
        validate_config(self)  # types and ranges, before anything is built


def images_to_tensor(images, minimum: int = 1) -> np.ndarray:
    """A list of ``H x W x 3`` images (one size) -> ``(N, 3, H, W)`` float32, centred on 0.

    ``minimum``: the smallest height and width the model can take (its backbone's stride: each
    2 x 2 pooling halves the map); a smaller image is a ``ValueError`` that says so."""
    arrays = [as_rgb_float(im) for im in images]
    for im in arrays:
        if min(im.shape[:2]) < minimum:
            h, w = im.shape[:2]
            raise ValueError(
                f"image of {w} x {h} pixels (width x height) is too small: this model needs at "
                f"least {minimum} x {minimum} (its backbone's stride)"
            )
    return np.stack([im.transpose(2, 0, 1) for im in arrays]) - np.float32(0.5)


class FastRCNN(SavedModel):
    """Fast R-CNN: ``loss(images, targets, proposals, rng)`` for training, ``predict(image)`` for use."""

    model_name = "fast_rcnn"  # recorded in the weights file
    default_weights = DEFAULT_WEIGHTS
    config_class = FastRCNNConfig

    def __init__(self, config: FastRCNNConfig = FastRCNNConfig(), seed=0):
        rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
        c = config
        self.config = c
        self.backbone = make_backbone(c.channels, seed=rng)
        scale = 1.0 / self.backbone.stride
        self.pooler = make_pooler(c.pooler, c.pooled_size, scale)
        in_features = self.backbone.out_channels * c.pooled_size**2
        self.box_head = BoxHead(in_features, c.hidden, c.num_classes, rng=rng)
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.timings: dict[str, float] = {}
        self._grads = None

    def parameters(self):
        return self.backbone.parameters() + self.box_head.parameters()

    def named_parameters(self):
        yield from (("backbone." + n, p) for n, p in self.backbone.named_parameters())
        yield from (("roi_heads.box_head." + n, p) for n, p in self.box_head.named_parameters())

    # --- training -----------------------------------------------------------------------------------

    def loss(self, images, targets, proposals, rng: np.random.Generator) -> dict[str, float]:
        """Forward pass and multi-task loss for a batch; keeps what :meth:`backward` needs.

        Args:
            images: ``N`` images ``H x W x 3`` of one size.
            targets: ``N`` dicts with ``"boxes"`` ``(G, 4)`` and ``"labels"`` ``(G,)``.
            proposals: ``N`` arrays ``(R_i, 4)``, e.g. cached selective-search boxes (constants).
            rng: RoI sampling.

        Returns:
            ``{"classification": float, "box_regression": float}``.
        """
        c = self.config
        features = self.backbone(images_to_tensor(images, self.backbone.stride))  # (N, C, H/8, W/8)
        rois, labels, deltas = [], [], []
        for n, (target, props) in enumerate(zip(targets, proposals, strict=True)):
            t = sample_roi_targets(
                props, target["boxes"], target["labels"], rng, fg_iou_thresh=c.fg_iou,
                bg_iou_low=c.bg_iou_low, batch_size_per_image=c.rois_per_image,
                positive_fraction=c.positive_fraction, box_coder=self.box_coder,
            )  # fmt: skip
            rois.append(np.hstack([np.full((len(t.proposals), 1), n, np.float32), t.proposals]))
            labels.append(t.labels)
            deltas.append(t.deltas)
        rois = np.concatenate(rois)  # (K, 5), constants: no gradient flows into the boxes
        pooled = self.pooler(features, rois)  # (K, C, P, P)
        cls_score, bbox_pred = self.box_head(pooled)
        out = fast_rcnn_loss(cls_score, bbox_pred, np.concatenate(labels), np.concatenate(deltas),
                             beta=c.smooth_l1_beta)  # fmt: skip
        self._grads = (out.dcls, out.dbox)
        return {"classification": out.classification, "box_regression": out.box_regression}

    def backward(self) -> None:
        """The backward of the last :meth:`loss`, in reverse order of the forward."""
        if self._grads is None:
            raise RuntimeError("FastRCNN.backward needs a loss() first")
        dpooled = self.box_head.backward(self._grads)  # (K, C, P, P)
        dfeatures = self.pooler.backward(dpooled)  # (N, C, H/8, W/8); RoIs get no gradient
        self.backbone.backward(dfeatures)  # the image gets none either
        self._grads = None

    # --- inference ----------------------------------------------------------------------------------

    def propose(self, image) -> np.ndarray:
        return selective_search(image, mode=self.config.proposal_mode)

    def detect(self, image, proposals) -> dict[str, np.ndarray]:
        """Detections for one image given its proposals (for timing the stages apart)."""
        H, W = np.asarray(image).shape[:2]
        t0 = time.perf_counter()
        features = self.backbone(images_to_tensor([image], self.backbone.stride))
        t1 = time.perf_counter()
        rois = np.hstack(
            [np.zeros((len(proposals), 1), np.float32), np.asarray(proposals, np.float32)]
        )
        cls_score, bbox_pred = self.box_head(self.pooler(features, rois))
        out = postprocess_detections(
            cls_score, bbox_pred, proposals, (H, W), self.config.score_thresh,
            self.config.nms_thresh, self.config.detections_per_img, self.box_coder,
        )  # fmt: skip
        t2 = time.perf_counter()
        for m in (self.backbone, self.pooler, self.box_head):
            m._cache = None  # inference: nothing to keep
        self.timings.update(features=t1 - t0, heads=t2 - t1)
        return out

    def predict(self, image) -> dict[str, np.ndarray]:
        """``{"boxes" (D, 4) float32, "labels" (D,) int64, "scores" (D,) float32}`` for one image."""
        t0 = time.perf_counter()
        proposals = self.propose(image)
        self.timings = {"proposals": time.perf_counter() - t0}
        return self.detect(image, proposals)
