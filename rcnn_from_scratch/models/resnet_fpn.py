"""The real thing: torchvision's ``fasterrcnn_resnet50_fpn`` and ``maskrcnn_resnet50_fpn`` (v1, COCO).

The same lecture pipeline as ``faster_rcnn.py`` and ``mask_rcnn.py``, with every slot at full scale:

    image H x W x 3 -> transform.py: normalise, resize (short side 800, long side <= 1333), pad to 32
      -> backbones/resnet.py: ResNet-50 (frozen batch norm folded into the convolutions) -> C2..C5
      -> backbones/fpn.py: the feature pyramid -> P2..P5 and 'pool' (five levels, strides 4 .. 64)
      -> proposals/anchors.py: 3 anchors per cell and level (sizes 32 .. 512, one per level)
      -> proposals/rpn.py: one RPN head shared by the levels -> objectness and deltas per anchor
      -> proposals/proposal_layer.py: top 1000 per level, NMS 0.7 per level -> 1000 proposals
      -> roi/multiscale.py: each RoI to its level (k = floor(4 + log2(sqrt(wh) / 224))) -> 7 x 7
      -> heads/box_head.py: fc6, fc7 (1024), 91 scores and 91 x 4 deltas -> postprocess.py: detections
      -> roi/multiscale.py at 14 x 14 on the detections -> heads/mask_head.py: 28 x 28 per detection
      -> transform.py: boxes back to the original image, masks pasted into it

This file holds no algorithm of its own: it picks a variant per slot and wires them, as the small
models do. The parameters carry torchvision's state-dict names (``named_parameters()`` gives them),
so torchvision's own weights load by a key map: the published COCO files are read without torch by
``checkpoints/`` and can be converted to our pickle-free ``.npz`` (``save``).

Only inference is implemented: the frozen ResNet has no backward. :meth:`inspect` returns every
intermediate by name, so nothing needs hooks to be seen.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from ..backbones.fpn import BackboneWithFPN
from ..backbones.resnet import ResNetBody
from ..box_coder import BoxCoder
from ..checkpoints.torchvision import (
    PUBLISHED,
    check_state_dict,
    find_weights,
    read_torch_checkpoint,
)
from ..conventions import as_rgb_float
from ..heads.box_head import BoxHead
from ..heads.mask_head import MaskHead, mask_probabilities
from ..nn import WeightsError, load_weights, save_weights
from ..postprocess import paste_masks_torchvision, postprocess_detections
from ..proposals.anchors import AnchorGenerator
from ..proposals.proposal_layer import ProposalConfig, proposals_by_level
from ..proposals.rpn import RPNHead, flatten_rpn_outputs
from ..roi.multiscale import MultiScaleRoIAlign
from ..transform import GeneralizedRCNNTransform, resize_boxes
from .resnet_fpn_config import (
    LEVELS,
    ROI_LEVELS,
    ResNetFPNConfig,
    _make_config,
    initialise_as_torchvision,
    torchvision_name,
)

__all__ = [
    "ResNetFPNConfig",
    "FasterRCNNResNet50FPN",
    "MaskRCNNResNet50FPN",
    "fasterrcnn_resnet50_fpn",
    "maskrcnn_resnet50_fpn",
]


class FasterRCNNResNet50FPN:
    """torchvision's ``fasterrcnn_resnet50_fpn`` (v1) for inference: ``predict(image)``,
    ``inspect(image)``, parameters under torchvision's names. Build it with
    :func:`fasterrcnn_resnet50_fpn`."""

    model_name = "fasterrcnn_resnet50_fpn"
    has_masks = False

    def __init__(self, config: ResNetFPNConfig = ResNetFPNConfig(), seed=0):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        c = self.config = config
        self.transform = GeneralizedRCNNTransform(c.min_size, c.max_size, c.image_mean, c.image_std)
        body = ResNetBody((3, 4, 6, 3), eps=c.batch_norm_eps, rng=rng)
        self.backbone = BackboneWithFPN(body, body.out_channels_list, 256, rng=rng)
        self.anchor_generator = AnchorGenerator(
            tuple((s,) for s in c.anchor_sizes), (tuple(c.aspect_ratios),) * len(c.anchor_sizes)
        )
        A = self.anchor_generator.num_anchors_per_location()[0]
        self.rpn = RPNHead(256, A, rng=rng)
        self.box_roi_pool = MultiScaleRoIAlign(list(ROI_LEVELS), 7, 2)
        self.box_head = BoxHead(256 * 7 * 7, 1024, c.num_classes - 1, rng=rng)
        self.rpn_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.timings: dict[str, float] = {}

    @property
    def categories(self) -> tuple[str, ...]:
        """Class names by label (COCO's 91 ids; index 0 is the background, 'N/A' the unused ids)."""
        return self.config.categories

    # --- parameters under torchvision's names ---------------------------------------------------

    def _modules(self):
        yield "backbone.", self.backbone
        yield "rpn.head.", self.rpn
        yield "roi_heads.box_head.", self.box_head

    def named_parameters(self):
        """``(torchvision state-dict key, Parameter)`` in torchvision's order of modules."""
        for prefix, module in self._modules():
            for name, p in module.named_parameters():
                yield torchvision_name(prefix + name), p

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(p.shape) for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray], source: str = "state dict") -> None:
        """Copy torchvision-named arrays into the model (every key must fit exactly), then fold the
        frozen batch norms into their convolutions."""
        check_state_dict(state, self.parameter_shapes(), source)
        for name, p in self.named_parameters():
            p.data[...] = np.asarray(state[name], dtype=np.float32)
        self.backbone.body.fold()

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: p.data.copy() for name, p in self.named_parameters()}

    # --- weights files ---------------------------------------------------------------------------

    def save(self, path) -> Path:
        """Our pickle-free ``.npz`` (``nn/weights.py``), with the config recorded."""
        config = {k: v for k, v in asdict(self.config).items() if k != "categories"}
        config.update(model=self.model_name, categories=list(self.config.categories))
        return save_weights(path, self.state_dict(), json.loads(json.dumps(config)))

    @classmethod
    def from_file(cls, path, **overrides) -> FasterRCNNResNet50FPN:
        """A model from a torchvision ``.pth`` (either ``torch.save`` format) or our ``.npz``.

        ``overrides``: config fields that replace the file's (``min_size``, ``box_score_thresh``, ...).
        """
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"{path}: no such weights file")
        if path.suffix == ".npz":
            state, stored = load_weights(path)
            if stored.get("model") != cls.model_name:
                raise WeightsError(
                    f"{path}: holds a {stored.get('model')!r} model, not a {cls.model_name!r}"
                )
            known = {f.name for f in fields(ResNetFPNConfig)}
            base = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()
                    if k in known}  # fmt: skip
        else:
            return cls.from_state_dict(read_torch_checkpoint(path), str(path), **overrides)
        model = cls(_make_config(base, overrides))
        model.load_state_dict(state, source=str(path))
        return model

    @classmethod
    def from_state_dict(cls, state: dict, source: str = "state dict", **overrides):
        """A model from torchvision-named arrays (what ``read_torch_checkpoint`` gives). The number
        of classes is read from the classifier; the batch norms use eps 0.0, as torchvision's
        builder sets for its COCO v1 files, unless ``batch_norm_eps`` is given."""
        base: dict = {}
        classifier = state.get("roi_heads.box_predictor.cls_score.weight")
        if classifier is not None and np.ndim(classifier) == 2 and len(classifier) != 91:
            base["num_classes"] = len(classifier)
            base["categories"] = tuple(f"class {i}" for i in range(len(classifier)))
        model = cls(_make_config(base, overrides))
        model.load_state_dict(state, source=source)
        return model

    # --- inference --------------------------------------------------------------------------------

    def _features(self, image, record: dict | None):
        c = self.config
        batch = self.transform([image])
        x, (h, w) = batch.tensors, batch.image_sizes[0]
        t = time.perf_counter()
        C, P = self.backbone.forward_with_body(x)
        self.backbone._cache = None
        self.timings["backbone"] = time.perf_counter() - t
        if record is not None:
            record.update(input=x, image_size=(h, w), scale=h / image.shape[0])
            record.update({f"C{k + 2}": v for k, v in enumerate(C)})
            record.update({f"P{k + 2}": P[name] for k, name in enumerate(LEVELS)})
        del C
        # RPN: one head over every level, outputs in the anchors' order (level, y, x, anchor)
        t = time.perf_counter()
        objectness, deltas, sizes = [], [], []
        for name in LEVELS:
            o, d = self.rpn(P[name])
            self.rpn._cache = None
            o, d = flatten_rpn_outputs(o, d)  # (1, h w A), (1, h w A, 4)
            objectness.append(o[0])
            deltas.append(d[0])
            sizes.append(P[name].shape[2:])
        anchors = self.anchor_generator(x.shape[2:], sizes)
        per_level = [len(o) for o in objectness]
        config = ProposalConfig(pre_nms_top_n=c.rpn_pre_nms_top_n_test,
                                post_nms_top_n=c.rpn_post_nms_top_n_test,
                                nms_thresh=c.rpn_nms_thresh, score_thresh=c.rpn_score_thresh)  # fmt: skip
        obj, dd = np.concatenate(objectness), np.concatenate(deltas)
        proposed = proposals_by_level(obj, dd, anchors, (h, w), per_level, config, self.rpn_coder)
        proposals = proposed.boxes
        self.timings["rpn"] = time.perf_counter() - t
        if record is not None:
            bounds = np.cumsum([0] + per_level)
            for k, name in enumerate(LEVELS):
                part = slice(bounds[k], bounds[k + 1])
                record[f"anchors/{name}"] = anchors[part]
                record[f"objectness/{name}"] = obj[part]
                record[f"deltas/{name}"] = dd[part]
            for k, name in enumerate(LEVELS):  # the proposal layer, level by level
                record[f"candidates/{name}"] = proposed.candidates[k]
                record[f"candidate_scores/{name}"] = proposed.candidate_scores[k]
                record[f"after_nms/{name}"] = proposed.candidates[k][proposed.survivors[k]]
            record.update(proposals=proposals, proposal_scores=proposed.scores,
                          proposal_levels=proposed.levels)  # fmt: skip
        return P, (h, w), proposals

    def _box_detections(self, P, image_size, proposals, record: dict | None) -> dict:
        c = self.config
        t = time.perf_counter()
        pooled = self.box_roi_pool({k: P[k] for k in ROI_LEVELS}, [proposals], [image_size])
        roi_levels = self.box_roi_pool.last_levels
        self.box_roi_pool._cache = None
        cls_score, bbox_pred = self.box_head(pooled)
        self.box_head._cache = None
        _drop_caches(self.box_head)
        det = postprocess_detections(cls_score, bbox_pred, proposals, image_size,
                                     c.box_score_thresh, c.box_nms_thresh,
                                     c.box_detections_per_img, self.box_coder)  # fmt: skip
        self.timings["box_head"] = time.perf_counter() - t
        if record is not None:
            record.update(roi_levels=roi_levels, box_features=pooled, class_logits=cls_score,
                          box_regression=bbox_pred,
                          detections_resized={k: v.copy() for k, v in det.items()})  # fmt: skip
        return det

    def _finish(self, det: dict, image_size, original_size) -> dict:
        """Boxes back to the original image's pixels (torchvision's ``resize_boxes``)."""
        det["boxes"] = resize_boxes(det["boxes"], image_size, original_size).astype(np.float32)
        return det

    def _run(self, image, record: dict | None) -> dict:
        image = as_rgb_float(image)
        self.timings = {}
        t = time.perf_counter()
        P, size, proposals = self._features(image, record)
        det = self._box_detections(P, size, proposals, record)
        det = self._extra(P, size, det, image.shape[:2], record)
        self.timings["total"] = time.perf_counter() - t
        return det

    def _extra(self, P, size, det, original_size, record):
        return self._finish(det, size, original_size)

    def predict(self, image) -> dict[str, np.ndarray]:
        """Detections of one image, as torchvision's model gives them in eval mode.

        Args:
            image: ``H x W x 3`` uint8 (or float in ``[0, 1]``; grayscale and RGBA are converted).

        Returns:
            ``{"boxes": (D, 4) float32 x1, y1, x2, y2 in the image's pixels, "labels": (D,) int64
            COCO ids (``model.categories[label]`` is the name), "scores": (D,) float32}``, best first;
            Mask R-CNN adds ``"masks"`` ``(D, H, W)`` bool and ``"mask_probabilities"`` ``(D, H, W)``
            float32. Seconds per stage go to ``self.timings``.
        """
        return self._run(image, None)

    def inspect(self, image) -> dict:
        """Every intermediate of one image's forward pass, by name (no hooks needed).

        ``input`` ``(1, 3, Hp, Wp)`` (normalised, resized, padded) and ``image_size`` (resized,
        unpadded); ``C2`` .. ``C5`` (ResNet stages); ``P2`` .. ``P6`` (pyramid levels ``'0'`` ..
        ``'pool'``); per level ``anchors/<name>`` ``(n, 4)``, ``objectness/<name>`` ``(n,)`` logits,
        ``deltas/<name>`` ``(n, 4)``; the proposal layer per level: ``candidates/<name>`` ``(k, 4)``
        (the top 1000 anchors by objectness, decoded and clipped), ``candidate_scores/<name>``, and
        ``after_nms/<name>`` (those that survive the size filter and the level's NMS); then
        ``proposals`` ``(R, 4)`` (the best 1000 over all levels) with ``proposal_scores`` and
        ``proposal_levels``; ``roi_levels`` (the pyramid level each RoI was pooled from),
        ``box_features`` ``(R, 256, 7, 7)``, ``class_logits`` ``(R, 91)``, ``box_regression``
        ``(R, 364)``; ``detections_resized`` (in the resized image's pixels) and ``detections`` (in the
        original's); Mask R-CNN adds ``mask_levels``, ``mask_logits`` ``(D, 91, 28, 28)``.
        Frames: boxes of the intermediates are in the resized image's pixels.
        """
        record: dict = {}
        record["detections"] = self._run(image, record)
        record["timings"] = dict(self.timings)
        return record

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_classes={self.config.num_classes})"


class MaskRCNNResNet50FPN(FasterRCNNResNet50FPN):
    """torchvision's ``maskrcnn_resnet50_fpn`` (v1): the Faster R-CNN above plus the mask branch
    (RoIAlign 14 x 14 on the final detections, four 3 x 3 convolutions, a 2 x 2 deconvolution, one
    28 x 28 sigmoid mask per class). Build it with :func:`maskrcnn_resnet50_fpn`."""

    model_name = "maskrcnn_resnet50_fpn"
    has_masks = True

    def __init__(self, config: ResNetFPNConfig = ResNetFPNConfig(), seed=0):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        super().__init__(config, seed=rng)
        self.mask_roi_pool = MultiScaleRoIAlign(list(ROI_LEVELS), 14, 2)
        self.mask_head = MaskHead(256, config.num_classes - 1, (256, 256, 256, 256),
                                  background_channel=True, rng=rng)  # fmt: skip

    def _modules(self):
        yield from super()._modules()
        yield "roi_heads.mask_head.", self.mask_head

    def _extra(self, P, size, det, original_size, record):
        t = time.perf_counter()
        pooled = self.mask_roi_pool({k: P[k] for k in ROI_LEVELS}, [det["boxes"]], [size])
        mask_levels = self.mask_roi_pool.last_levels
        self.mask_roi_pool._cache = None
        logits = self.mask_head(pooled)
        _drop_caches(self.mask_head)
        probabilities = mask_probabilities(logits, det["labels"], background_channel=True)
        self.timings["mask_head"] = time.perf_counter() - t
        if record is not None:
            record.update(mask_levels=mask_levels, mask_logits=logits)
        t = time.perf_counter()
        det = self._finish(det, size, original_size)
        pasted = paste_masks_torchvision(probabilities, det["boxes"], original_size)[:, 0]
        det["mask_probabilities"] = pasted
        det["masks"] = pasted > self.config.mask_threshold
        self.timings["paste"] = time.perf_counter() - t
        return det


def _drop_caches(module) -> None:
    """Inference keeps nothing for a backward: clear the caches of a module tree."""
    stack = [module]
    while stack:
        m = stack.pop()
        m._cache = None
        stack.extend(child for _, child in m.children())
        stack.extend(getattr(m, "_layers", []))


def _build(cls, weights, seed, kwargs):
    if weights is None:
        kwargs.setdefault(
            "batch_norm_eps", 1e-5
        )  # torchvision: BatchNorm2d's default without weights
        model = cls(_make_config({}, kwargs), seed=seed)
        initialise_as_torchvision(model, np.random.default_rng(seed))
        return model
    if isinstance(weights, str) and weights in ("DEFAULT", "COCO_V1"):
        found = find_weights(cls.model_name)
        if found is None:
            published = PUBLISHED[cls.model_name]
            raise WeightsError(
                f"{published.filename} is not in the cache folders; run `python -m "
                f"rcnn_from_scratch fetch-weights {cls.model_name}` or pass its path"
            )
        weights = found
    return cls.from_file(weights, **kwargs)


def fasterrcnn_resnet50_fpn(weights=None, *, seed=0, **kwargs) -> FasterRCNNResNet50FPN:
    """torchvision's builder, in NumPy: ``fasterrcnn_resnet50_fpn(weights=None, **kwargs)``.

    Args:
        weights: ``None`` (a seeded random model: shapes and timings, no meaningful detections), a
            path to torchvision's ``.pth`` (``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth``, either
            ``torch.save`` format) or to our converted ``.npz``, or ``"DEFAULT"`` / ``"COCO_V1"`` to
            use the published file from the cache folders (``fetch-weights`` puts it there).
        seed: initialisation of the random model.
        **kwargs: torchvision's keyword arguments for inference: ``min_size``, ``max_size``,
            ``image_mean``, ``image_std``, ``rpn_pre_nms_top_n_test``, ``rpn_post_nms_top_n_test``,
            ``rpn_nms_thresh``, ``rpn_score_thresh``, ``box_score_thresh``, ``box_nms_thresh``,
            ``box_detections_per_img``, ``num_classes``; and ``batch_norm_eps``, ``mask_threshold``.
    """
    return _build(FasterRCNNResNet50FPN, weights, seed, kwargs)


def maskrcnn_resnet50_fpn(weights=None, *, seed=0, **kwargs) -> MaskRCNNResNet50FPN:
    """torchvision's builder, in NumPy: ``maskrcnn_resnet50_fpn(weights=None, **kwargs)``.

    As :func:`fasterrcnn_resnet50_fpn`, with ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth``; the model's
    ``predict`` adds the masks.
    """
    return _build(MaskRCNNResNet50FPN, weights, seed, kwargs)
