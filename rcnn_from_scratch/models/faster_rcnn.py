"""Stage 3, Faster R-CNN (Ren et al., 2015): the Region Proposal Network replaces selective search.

    image -> backbone (once) -> features -> RPN -> objectness + deltas per anchor -> proposal layer
                                         -> RoI pooling of the proposals -> box head -> detections

The only change from ``fast_rcnn.py`` is where proposals come from: a small network on the *same*
features instead of a pixel-level algorithm, so proposals cost almost nothing. Training is the
"approximate joint" scheme: RPN and box-head losses are summed and trained together, and the
proposals are treated as constants (no gradient through their coordinates), as in torchvision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backbones.convnet import make_backbone
from ..box_coder import BoxCoder
from ..boxes import clip_boxes_to_image
from ..conventions import as_rgb_float
from ..heads.box_head import BoxHead, fast_rcnn_loss
from ..postprocess import postprocess_detections
from ..proposals.anchors import AnchorGenerator
from ..proposals.proposal_layer import ProposalConfig, proposals_by_level, select_proposals, top_k
from ..proposals.rpn import RPNHead, flatten_rpn_outputs, rpn_loss
from ..roi.pooler import make_pooler
from ..targets.roi_targets import select_training_samples
from ..targets.rpn_targets import assign_targets_to_anchors
from .fast_rcnn import images_to_tensor
from .saved_model import SavedModel, validate_config


def _rois(boxes_per_image) -> np.ndarray:
    """Per-image ``(R_i, 4)`` boxes -> ``(sum R_i, 5)`` float32 RoIs, batch index first."""
    return np.concatenate(
        [np.hstack([np.full((len(b), 1), n, np.float32), b]) for n, b in enumerate(boxes_per_image)]
    ).astype(np.float32, copy=False)


__all__ = ["FasterRCNNConfig", "FasterRCNN", "DEFAULT_WEIGHTS"]

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "faster_rcnn_shapes.npz"


@dataclass(frozen=True)
class FasterRCNNConfig:
    """Faster R-CNN's numbers, scaled to 128 x 128 shapes (objects 16 to 48 pixels across)."""

    num_classes: int = 3
    channels: tuple[int, ...] = (16, 32, 64)
    anchor_sizes: tuple[float, ...] = (16.0, 32.0, 48.0)  # paper: 128, 256, 512 on ~600 px images
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width, as torchvision
    rpn_batch_size: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_train: int = 1000
    rpn_post_nms_train: int = 300
    rpn_pre_nms_test: int = 500
    rpn_post_nms_test: int = 100  # paper: 300 at test time
    rpn_nms_thresh: float = 0.7
    pooler: str = "roi_pool"
    pooled_size: int = 7
    hidden: int = 256
    rois_per_image: int = 128  # torchvision: 512
    positive_fraction: float = 0.25
    smooth_l1_beta: float = 1.0 / 9
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_img: int = 100

    def __post_init__(self):
        validate_config(self)  # types and ranges, before anything is built


class FasterRCNN(SavedModel):
    """Faster R-CNN: ``loss(images, targets, rng)`` and :meth:`backward` to train, ``predict(image)``."""

    model_name = "faster_rcnn"  # recorded in the weights file
    default_weights = DEFAULT_WEIGHTS
    config_class = FasterRCNNConfig

    def __init__(self, config: FasterRCNNConfig = FasterRCNNConfig(), seed=0):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        c = self.config = config
        self.backbone = make_backbone(c.channels, seed=rng)
        self.anchor_generator = AnchorGenerator((c.anchor_sizes,), (c.aspect_ratios,))
        A = self.anchor_generator.num_anchors_per_location()[0]
        self.rpn = RPNHead(self.backbone.out_channels, A, rng=rng)
        scale = 1.0 / self.backbone.stride
        self.pooler = make_pooler(c.pooler, c.pooled_size, scale)
        self.box_head = BoxHead(
            self.backbone.out_channels * c.pooled_size**2, c.hidden, c.num_classes, rng=rng
        )
        self.rpn_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.timings: dict[str, float] = {}
        self._grads = None

    def named_parameters(self):
        for prefix, module in (("backbone.", self.backbone), ("rpn.head.", self.rpn),
                               ("roi_heads.box_head.", self.box_head)):  # fmt: skip
            yield from ((prefix + n, p) for n, p in module.named_parameters())

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def _proposals(self, features, image_size, training: bool):
        """RPN outputs and the proposals of every image (constants for what follows)."""
        c = self.config
        objectness, deltas = self.rpn(features)
        anchors = self.anchor_generator(image_size, [features.shape[2:]])
        obj, d = flatten_rpn_outputs(objectness, deltas)
        cfg = ProposalConfig(
            pre_nms_top_n=c.rpn_pre_nms_train if training else c.rpn_pre_nms_test,
            post_nms_top_n=c.rpn_post_nms_train if training else c.rpn_post_nms_test,
            nms_thresh=c.rpn_nms_thresh,
        )
        proposals = [
            select_proposals(obj[n], d[n], anchors, image_size, cfg, self.rpn_coder)[0]
            for n in range(len(obj))
        ]
        return objectness, deltas, anchors, proposals

    def rpn_outputs(self, image):
        """The RPN's view of one image, for figures: ``(anchors (h w A, 4), objectness logits
        (h w A,), deltas (h w A, 4), feature size (h, w))``, in the anchors' order."""
        image = as_rgb_float(image)
        features = self.backbone(images_to_tensor([image], self.backbone.stride))
        objectness, deltas = self.rpn(features)
        for m in (self.backbone, self.rpn):
            m._cache = None
        anchors = self.anchor_generator(image.shape[:2], [features.shape[2:]])
        obj, d = flatten_rpn_outputs(objectness, deltas)
        return anchors, obj[0], d[0], features.shape[2:]

    def inspect(self, image) -> dict[str, np.ndarray]:
        """Every step of one image's test-time pass, by name (for notebooks; no hooks needed).

        The RPN: ``anchors`` ``(h w A, 4)``, ``objectness`` ``(h w A,)`` logits, ``deltas``
        ``(h w A, 4)``, ``feature_size`` ``(h, w)``; the proposal layer: ``top`` ``(k,)`` int64
        indices of the ``rpn_pre_nms_test`` anchors with the highest objectness, ``decoded`` ``(k, 4)``
        those anchors moved by their deltas (not clipped), ``candidates`` ``(k, 4)`` the same clipped
        to the image, ``after_nms`` ``(s, 4)`` the candidates that survive NMS, ``proposals`` ``(R, 4)``
        the best ``rpn_post_nms_test`` of them with ``proposal_scores`` ``(R,)``. The box head:
        ``class_logits`` ``(R, K + 1)``, ``box_regression`` ``(R, 4 (K + 1))``, ``refined`` ``(R, K, 4)``
        each proposal decoded for each class (clipped; before the score threshold and per-class NMS),
        and ``detections`` as :meth:`predict` gives them. Boxes ``x1, y1, x2, y2`` in image pixels.
        """
        image = as_rgb_float(image)
        H, W = image.shape[:2]
        c = self.config
        features = self.backbone(images_to_tensor([image], self.backbone.stride))
        objectness, deltas = self.rpn(features)
        anchors = self.anchor_generator((H, W), [features.shape[2:]])
        obj, d = (v[0] for v in flatten_rpn_outputs(objectness, deltas))
        cfg = ProposalConfig(c.rpn_pre_nms_test, c.rpn_post_nms_test, c.rpn_nms_thresh)
        steps = proposals_by_level(obj, d, anchors, (H, W), config=cfg, box_coder=self.rpn_coder)
        top = top_k(obj, c.rpn_pre_nms_test)
        cls_score, bbox_pred = self.box_head(self.pooler(features, _rois([steps.boxes])))
        R, classes = cls_score.shape
        refined = self.box_coder.decode_single(bbox_pred, steps.boxes).reshape(R, classes, 4)
        detections = postprocess_detections(cls_score, bbox_pred, steps.boxes, (H, W),
                                            c.score_thresh, c.nms_thresh, c.detections_per_img,
                                            self.box_coder)  # fmt: skip
        for m in (self.backbone, self.rpn, self.pooler, self.box_head):
            m._cache = None
        return {
            "anchors": anchors,
            "objectness": obj,
            "deltas": d,
            "feature_size": tuple(features.shape[2:]),
            "top": top,
            "decoded": self.rpn_coder.decode_single(d[top], anchors[top]),
            "candidates": steps.candidates[0],
            "after_nms": steps.candidates[0][steps.survivors[0]],
            "proposals": steps.boxes,
            "proposal_scores": steps.scores,
            "class_logits": cls_score,
            "box_regression": bbox_pred,
            "refined": clip_boxes_to_image(refined[:, 1:].reshape(-1, 4), (H, W)).reshape(
                R, classes - 1, 4
            ),
            "detections": detections,
        }

    def loss(self, images, targets, rng: np.random.Generator) -> dict[str, float]:
        """Forward pass and the four losses (RPN objectness and boxes, head classes and boxes).

        Args:
            images: ``N`` images ``H x W x 3`` of one size.
            targets: ``N`` dicts with ``"boxes"`` ``(G, 4)`` and ``"labels"`` ``(G,)``.
            rng: anchor and RoI sampling.

        Returns:
            ``{"rpn_objectness", "rpn_box", "classification", "box_regression"}`` as floats, plus
            whatever :meth:`_extra_losses` adds (Mask R-CNN's ``"mask"``).
        """
        c = self.config
        x = images_to_tensor(images, self.backbone.stride)
        features = self.backbone(x)  # (N, C, h, w)
        objectness, deltas, anchors, proposals = self._proposals(
            features, x.shape[2:], training=True
        )
        rpn_targets = assign_targets_to_anchors(
            anchors, targets, rng, batch_size_per_image=c.rpn_batch_size,
            positive_fraction=c.rpn_positive_fraction, box_coder=self.rpn_coder,
        )  # fmt: skip
        rpn = rpn_loss(objectness, deltas, rpn_targets, c.smooth_l1_beta)
        sampled = select_training_samples(
            proposals, targets, rng, batch_size_per_image=c.rois_per_image,
            positive_fraction=c.positive_fraction, box_coder=self.box_coder,
        )  # fmt: skip
        rois = _rois([s.proposals for s in sampled])  # constants: no gradient into the boxes
        cls_score, bbox_pred = self.box_head(self.pooler(features, rois))
        head = fast_rcnn_loss(cls_score, bbox_pred, np.concatenate([s.labels for s in sampled]),
                              np.concatenate([s.deltas for s in sampled]), beta=c.smooth_l1_beta)  # fmt: skip
        self._grads = (rpn.dobjectness, rpn.ddeltas, head.dcls, head.dbox)
        losses = {"rpn_objectness": rpn.objectness, "rpn_box": rpn.box_regression,
                  "classification": head.classification, "box_regression": head.box_regression}  # fmt: skip
        losses.update(self._extra_losses(features, sampled, targets))
        return losses

    def _extra_losses(self, features, sampled, targets) -> dict[str, float]:
        """Hook for another head on the same sampled RoIs (Mask R-CNN's mask branch)."""
        return {}

    def _extra_backward(self):
        """The feature gradient of :meth:`_extra_losses`' head, or ``None``."""
        return None

    def backward(self) -> None:
        """Reverse of :meth:`loss`: every head sends its gradient into the shared features, then the
        backbone. Proposals and sampled RoIs are constants, so nothing flows through their boxes."""
        if self._grads is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a loss() first")
        dobj, ddeltas, dcls, dbox = self._grads
        dfeatures = self.pooler.backward(self.box_head.backward((dcls, dbox)))
        dfeatures += self.rpn.backward((dobj, ddeltas))
        extra = self._extra_backward()
        if extra is not None:
            dfeatures += extra
        self.backbone.backward(dfeatures)
        self._grads = None

    def _detect(self, image) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Features and box detections of one image; stage times go to ``self.timings``."""
        H, W = image.shape[:2]
        t0 = time.perf_counter()
        features = self.backbone(images_to_tensor([image], self.backbone.stride))
        t1 = time.perf_counter()
        _, _, _, proposals = self._proposals(features, (H, W), training=False)
        t2 = time.perf_counter()
        cls_score, bbox_pred = self.box_head(self.pooler(features, _rois(proposals)))
        c = self.config
        out = postprocess_detections(cls_score, bbox_pred, proposals[0], (H, W), c.score_thresh,
                                     c.nms_thresh, c.detections_per_img, self.box_coder)  # fmt: skip
        t3 = time.perf_counter()
        for m in (self.backbone, self.rpn, self.pooler, self.box_head):
            m._cache = None  # inference: nothing to keep
        self.timings = {"features": t1 - t0, "proposals": t2 - t1, "heads": t3 - t2}
        return features, out

    def predict(self, image) -> dict[str, np.ndarray]:
        """Detections of one image, as torchvision's detectors give them.

        Args:
            image: ``H x W x 3`` uint8 (or float in ``[0, 1]``; grayscale and RGBA are converted).

        Returns:
            ``{"boxes": (D, 4) float32 x1, y1, x2, y2 in image pixels, "labels": (D,) int64 (1 ..
            num_classes), "scores": (D,) float32}``, best first. Stage times go to ``self.timings``.
        """
        return self._detect(as_rgb_float(image))[1]
