"""The feature pyramid in miniature: Mask R-CNN with an FPN, trained from scratch on multi-scale shapes.

    image -> trunk -> C2..C5 (strides 4..32) -> FPN -> P2..P6 -> RPN on every level (one head)
          -> proposals (top-k and NMS per level) -> the level rule -> MultiScaleRoIAlign 7 x 7
          -> box head -> detections -> MultiScaleRoIAlign 14 x 14 -> mask head -> 28 x 28 masks

Against ``mask_rcnn.py`` one slot changes, the features: a pyramid instead of one map. Everything
else is the same pieces used per level: the anchors (one size per level), one RPN head shared by all
levels (its loss over all levels' anchors at once), and the FPN level rule sending each RoI to the
map whose stride suits its size. ``arm="single_level"`` is the ablation's other arm: the same trunk,
its last map only (stride 32), every anchor size on that one map, every RoI read from it.

Assembly only: the pieces live in ``backbones/`` (``small_trunk.py``, ``fpn.py``), ``proposals/``,
``roi/multiscale.py`` and ``heads/``. Training is approximate joint training, as in
``faster_rcnn.py``: the proposals and sampled RoIs are constants.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..backbones.fpn import FeaturePyramidNetwork
from ..backbones.small_trunk import SmallTrunk
from ..box_coder import BoxCoder
from ..conventions import as_rgb_float
from ..heads.box_head import BoxHead, fast_rcnn_loss
from ..heads.mask_head import MaskHead, mask_loss, mask_probabilities
from ..nn.module import Module
from ..postprocess import paste_masks_in_image, postprocess_detections
from ..proposals.anchors import AnchorGenerator
from ..proposals.proposal_layer import ProposalConfig, proposals_by_level
from ..proposals.rpn import RPNHead, flatten_rpn_outputs, rpn_loss_over_levels
from ..roi.multiscale import MultiScaleRoIAlign
from ..targets.mask_targets import project_masks_on_boxes
from ..targets.roi_targets import select_training_samples
from ..targets.rpn_targets import assign_targets_to_anchors
from .fast_rcnn import images_to_tensor
from .saved_model import SavedModel

__all__ = ["MaskRCNNFPNConfig", "MaskRCNNFPN", "ARMS", "DEFAULT_WEIGHTS"]

DATA = Path(__file__).resolve().parents[2] / "data"
ARMS = ("fpn", "single_level")
DEFAULT_WEIGHTS = {arm: DATA / f"mask_rcnn_{arm}_multiscale.npz" for arm in ARMS}
TRAIN_COMMAND = (
    "python -m rcnn_from_scratch train mask-rcnn-fpn --arm {arm} --seed 0 --images 400 --steps 4000 "
    "--evaluate-every 1000 --minutes 30 --out {path}"
)


@dataclass(frozen=True)
class MaskRCNNFPNConfig:
    """The numbers, scaled to 256 x 256 multi-scale shapes (objects 8 to 160 pixels across).

    torchvision's (on ~800-pixel images): anchors 32..512 on P2..P6, canonical RoI 224 at level 4,
    FPN width 256, 2000 / 1000 proposals per level / image. Ours are about 4x smaller.
    """

    arm: str = "fpn"  # or "single_level": the trunk's last map only
    num_classes: int = 3
    trunk_channels: tuple[int, ...] = (16, 32, 64, 128)
    fpn_channels: int = 64
    anchor_sizes: tuple[float, ...] = (8.0, 16.0, 32.0, 64.0, 128.0)  # one per level P2..P6
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width, as torchvision
    rpn_batch_size: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_train: int = 1000  # per level
    rpn_post_nms_train: int = 500
    rpn_pre_nms_test: int = 1000  # per level
    rpn_post_nms_test: int = 300
    rpn_nms_thresh: float = 0.7
    canonical_scale: int = 56  # the level rule's k0 = 4 RoI side; torchvision: 224
    pooled_size: int = 7
    sampling_ratio: int = 2
    hidden: int = 256
    rois_per_image: int = 128
    positive_fraction: float = 0.25
    mask_layers: tuple[int, ...] = (32, 32, 32, 32)
    smooth_l1_beta: float = 1.0 / 9
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_img: int = 100
    mask_threshold: float = 0.5

    def __post_init__(self):
        if self.arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}; got {self.arm!r}")
        if len(self.anchor_sizes) != 5:
            raise ValueError(
                f"anchor_sizes must give one size per level P2..P6; got {self.anchor_sizes}"
            )


class SharedHead(Module):
    """One module applied to several maps: the RPN head shared across levels.

    ``forward(list of maps) -> list of outputs``; ``backward(list of douts) -> list of dinputs``;
    the parameter gradients of all levels add up. A module keeps one cache (and so does each of
    its layers), so after each level's forward the caches of the whole module tree are kept aside,
    and put back before that level's backward.
    """

    def __init__(self, head: Module):
        self.head = head
        self._tree = list(_walk(head))  # the head and every layer under it

    def _forward(self, maps):
        outs, caches = [], []
        for m in maps:
            outs.append(self.head(m))
            caches.append([layer._cache for layer in self._tree])
        return outs, caches

    def _backward(self, douts, caches):
        if len(douts) != len(caches):
            raise ValueError(f"douts must give one gradient per level ({len(caches)})")
        grads = []
        for d, level_caches in zip(douts, caches, strict=True):
            for layer, cache in zip(self._tree, level_caches, strict=True):
                layer._cache = cache
            grads.append(self.head.backward(d))
        return grads


def _walk(module: Module):
    """``module`` and every module under it (children, and the mask head's forward list)."""
    yield module
    for _, child in module.children():
        yield from _walk(child)
    for layer in getattr(module, "_layers", ()):
        if not any(layer is c for _, c in module.children()):
            yield from _walk(layer)


class MaskRCNNFPN(SavedModel):
    """Mask R-CNN over a feature pyramid (or its single-level arm): ``loss(images, targets, rng)``,
    :meth:`backward`, ``predict(image)``, :meth:`inspect`, :meth:`propose`, ``pretrained(arm)``."""

    model_name = "mask_rcnn_fpn"
    config_class = MaskRCNNFPNConfig
    dataset_variant = "multiscale"  # what the training loop and the evaluation generate

    def __init__(self, config: MaskRCNNFPNConfig = MaskRCNNFPNConfig(), seed=0):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        c = self.config = config
        self.trunk = SmallTrunk(c.trunk_channels, rng=rng)
        ratios = c.aspect_ratios
        if c.arm == "fpn":
            self.fpn = FeaturePyramidNetwork(self.trunk.out_channels, c.fpn_channels, rng=rng)
            width = c.fpn_channels
            sizes, names = tuple((s,) for s in c.anchor_sizes), ["0", "1", "2", "3"]
        else:  # every anchor size on the one map, as the single-map detectors
            self.fpn = None
            width = self.trunk.out_channels[-1]
            sizes, names = (tuple(c.anchor_sizes),), ["0"]
        self.anchor_generator = AnchorGenerator(sizes, (ratios,) * len(sizes))
        A = self.anchor_generator.num_anchors_per_location()[0]
        self.rpn = SharedHead(RPNHead(width, A, rng=rng))
        self.box_roi_pool = MultiScaleRoIAlign(names, c.pooled_size, c.sampling_ratio,
                                               canonical_scale=c.canonical_scale)  # fmt: skip
        self.mask_roi_pool = MultiScaleRoIAlign(names, 2 * c.pooled_size, c.sampling_ratio,
                                                canonical_scale=c.canonical_scale)  # fmt: skip
        self.box_head = BoxHead(width * c.pooled_size**2, c.hidden, c.num_classes, rng=rng)
        self.mask_head = MaskHead(width, c.num_classes, c.mask_layers, rng=rng)
        self.rpn_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.timings: dict[str, float] = {}
        self._grads = None

    # -- parameters and files ---------------------------------------------------------------
    def parts(self):
        """``(prefix, module)`` of every part with parameters, in the data's order."""
        parts = [("backbone.body.", self.trunk)]
        if self.fpn is not None:
            parts.append(("backbone.fpn.", self.fpn))
        parts += [("rpn.", self.rpn.head), ("roi_heads.box_head.", self.box_head),
                  ("roi_heads.mask_head.", self.mask_head)]  # fmt: skip
        return parts

    def named_parameters(self):
        for prefix, module in self.parts():
            yield from ((prefix + n, p) for n, p in module.named_parameters())

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def to(self, dtype) -> MaskRCNNFPN:
        """Cast every parameter to ``dtype`` (float64 for gradient checks); inputs follow."""
        for _, module in self.parts():
            module.to(dtype)
        return self

    @classmethod
    def pretrained(cls, arm: str = "fpn", path=None) -> MaskRCNNFPN:
        """The shipped weights of one arm (``"fpn"`` or ``"single_level"``) from ``data/``.

        Raises:
            ValueError: an unknown arm. FileNotFoundError: the file is not there yet; the message
            names the command that trains it.
        """
        if arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}; got {arm!r}")
        path = Path(path) if path is not None else DEFAULT_WEIGHTS[arm]
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist; train it with: " + TRAIN_COMMAND.format(arm=arm, path=path)
            )
        model = cls.load(path)
        if model.config.arm != arm:
            raise ValueError(f"{path} holds the {model.config.arm!r} arm, not {arm!r}")
        return model

    # -- the forward pieces -----------------------------------------------------------------
    def _features(self, x) -> dict[str, np.ndarray]:
        """The maps the RPN and the heads read, by name (``'0'..'3', 'pool'``, or ``'0'``)."""
        maps = self.trunk(x)
        if self.fpn is None:
            return {"0": maps[-1]}
        return self.fpn(maps)

    def _rpn(self, features, image_size):
        """The RPN's outputs per level, and all the anchors in the same order."""
        maps = list(features.values())
        outs = self.rpn(maps)
        anchors = self.anchor_generator(image_size, [m.shape[2:] for m in maps])
        return [o for o, _ in outs], [d for _, d in outs], anchors

    def _proposal_records(self, objectness, deltas, anchors, image_size, pre_nms, post_nms):
        """The proposal layer per image (top-k and NMS per level): a ``ProposalRecord`` each."""
        flat = [flatten_rpn_outputs(o, d) for o, d in zip(objectness, deltas, strict=True)]
        obj = np.concatenate([f[0] for f in flat], axis=1)  # (N, T)
        d = np.concatenate([f[1] for f in flat], axis=1)  # (N, T, 4)
        cfg = ProposalConfig(pre_nms_top_n=pre_nms, post_nms_top_n=post_nms,
                             nms_thresh=self.config.rpn_nms_thresh)  # fmt: skip
        per_level = [f[0].shape[1] for f in flat]
        return [
            proposals_by_level(obj[n], d[n], anchors, image_size, per_level, cfg, self.rpn_coder)
            for n in range(len(obj))
        ]

    def _proposals(self, objectness, deltas, anchors, image_size, pre_nms, post_nms):
        records = self._proposal_records(objectness, deltas, anchors, image_size, pre_nms, post_nms)
        return [r.boxes for r in records]

    def _tensor(self, images) -> np.ndarray:
        x = images_to_tensor(images)
        return x.astype(self.trunk.stages[0][0].weight.data.dtype, copy=False)

    # -- training ---------------------------------------------------------------------------
    def loss(self, images, targets, rng: np.random.Generator, proposals=None) -> dict[str, float]:
        """Forward pass and the five losses (RPN objectness and boxes, classes, boxes, masks).

        Args:
            images: ``N`` images ``H x W x 3`` of one size, ``H`` and ``W`` multiples of 32.
            targets: ``N`` dicts with ``"boxes"`` ``(G, 4)``, ``"labels"`` ``(G,)``, ``"masks"``
                ``(G, H, W)`` bool.
            rng: anchor and RoI sampling.
            proposals: optional ``N`` arrays ``(R_i, 4)`` used instead of the RPN's (they are
                constants either way; a gradient check fixes them so the loss is smooth).

        Returns:
            ``{"rpn_objectness", "rpn_box", "classification", "box_regression", "mask"}``.
        """
        c = self.config
        x = self._tensor(images)
        image_size = x.shape[2:]
        features = self._features(x)
        objectness, deltas, anchors = self._rpn(features, image_size)
        if proposals is None:
            proposals = self._proposals(objectness, deltas, anchors, image_size,
                                        c.rpn_pre_nms_train, c.rpn_post_nms_train)  # fmt: skip
        for t in targets:
            if "masks" not in t:
                raise ValueError(
                    "Mask R-CNN's targets need 'masks' (G, H, W) besides boxes and labels"
                )
        rpn_targets = assign_targets_to_anchors(
            anchors, targets, rng, batch_size_per_image=c.rpn_batch_size,
            positive_fraction=c.rpn_positive_fraction, box_coder=self.rpn_coder,
        )  # fmt: skip
        rpn = rpn_loss_over_levels(objectness, deltas, rpn_targets, c.smooth_l1_beta)
        sampled = select_training_samples(
            proposals, targets, rng, batch_size_per_image=c.rois_per_image,
            positive_fraction=c.positive_fraction, box_coder=self.box_coder,
        )  # fmt: skip
        shapes = [image_size] * len(images)
        pooled = self.box_roi_pool(features, [s.proposals for s in sampled], shapes)
        cls_score, bbox_pred = self.box_head(pooled)
        head = fast_rcnn_loss(cls_score, bbox_pred, np.concatenate([s.labels for s in sampled]),
                              np.concatenate([s.deltas for s in sampled]), beta=c.smooth_l1_beta)  # fmt: skip
        # the mask branch on the positive RoIs; targets: the matched masks resampled to 28 x 28
        boxes, labels, mask_targets = [], [], []
        for s, t in zip(sampled, targets, strict=True):
            fg = s.labels > 0
            boxes.append(s.proposals[fg])
            labels.append(s.labels[fg])
            mask_targets.append(project_masks_on_boxes(
                t["masks"], s.proposals[fg], s.matched_gt[fg], 4 * c.pooled_size
            ))  # fmt: skip
        logits = self.mask_head(self.mask_roi_pool(features, boxes, shapes))
        masks = mask_loss(logits, np.concatenate(labels), np.concatenate(mask_targets))
        self._grads = (list(features), rpn.dobjectness, rpn.ddeltas, head.dcls, head.dbox,
                       masks.dlogits)  # fmt: skip
        return {"rpn_objectness": rpn.objectness, "rpn_box": rpn.box_regression,
                "classification": head.classification, "box_regression": head.box_regression,
                "mask": masks.loss}  # fmt: skip

    def backward(self) -> None:
        """Reverse of :meth:`loss`: the mask head, the box head and the RPN send their gradients into
        the maps they read (each RoI into its level), the FPN's top-down path carries them down,
        the trunk last. Proposals and sampled RoIs are constants: nothing flows through boxes."""
        if self._grads is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a loss() first")
        names, dobj, ddeltas, dcls, dbox, dmask = self._grads
        self._grads = None
        dmaps = self.mask_roi_pool.backward(self.mask_head.backward(dmask))  # dict by level name
        for name, g in self.box_roi_pool.backward(self.box_head.backward((dcls, dbox))).items():
            dmaps[name] = dmaps[name] + g
        drpn = self.rpn.backward(list(zip(dobj, ddeltas, strict=True)))  # one per level
        for name, g in zip(names, drpn, strict=True):
            dmaps[name] = dmaps[name] + g if name in dmaps else g  # 'pool': the RPN's only
        if self.fpn is None:
            self.trunk.backward([None, None, None, dmaps["0"]])
        else:
            self.trunk.backward(self.fpn.backward(dmaps))

    # -- inference --------------------------------------------------------------------------
    def propose(self, image, top_n: int | None = None) -> np.ndarray:
        """The RPN's proposals of one image, best first: ``(R, 4)`` float32 ``x1, y1, x2, y2`` in
        image pixels; ``top_n`` (default ``rpn_post_nms_test``) kept after NMS by level."""
        c = self.config
        image = as_rgb_float(image)
        x = self._padded_tensor(image)
        objectness, deltas, anchors = self._rpn(self._features(x), x.shape[2:])
        self._clear()
        top_n = c.rpn_post_nms_test if top_n is None else int(top_n)
        size = image.shape[:2]  # proposals are clipped to the image, not to its padding
        return self._proposals(objectness, deltas, anchors, size, c.rpn_pre_nms_test, top_n)[0]

    def _padded_tensor(self, image) -> np.ndarray:
        """``(1, 3, H', W')``: the image centred on 0, padded with zeros (mid-grey) below and to the
        right to multiples of 32, the trunk's largest stride, as torchvision batches images; the
        padding holds no object, and every box stays in the image's own pixels."""
        x = self._tensor([image])
        H, W = x.shape[2:]
        pad = ((0, 0), (0, 0), (0, -H % 32), (0, -W % 32))
        return np.pad(x, pad) if any(p[1] for p in pad) else x

    def _clear(self):
        for _, module in self.parts():
            _clear_caches(module)
        for m in (self.rpn, self.box_roi_pool, self.mask_roi_pool):
            m._cache = None

    def predict(self, image) -> dict[str, np.ndarray]:
        """Detections and instance masks of one image, as torchvision's ``MaskRCNN`` gives them.

        Args:
            image: ``H x W x 3`` uint8 (or float in ``[0, 1]``), any size (padded inside to
                multiples of 32; the padding is cut off again).

        Returns:
            ``{"boxes": (D, 4) float32, "labels": (D,) int64, "scores": (D,) float32, "masks":
            (D, H, W) bool}``; boxes in image pixels, best first. Stage times in ``self.timings``.
        """
        return self._run(image, None)

    def inspect(self, image) -> dict:
        """Every intermediate of one image's forward pass, by name (what :meth:`predict` computes,
        kept; no caches are left behind either way).

        Args:
            image: ``H x W x 3`` uint8 (or float in ``[0, 1]``), any size (as :meth:`predict`).

        Returns:
            A dict; every box is ``x1, y1, x2, y2`` float32 in the image's pixels (there is no
            resize), every map float32 ``(1, C, h, w)``:

            - ``input`` ``(1, 3, H', W')``, the image minus 0.5 (``image_mean`` ``(0.5, 0.5, 0.5)``
              and ``image_std`` ``(1, 1, 1)`` undo it), zero-padded to multiples of 32;
              ``image_size`` ``(H, W)``, the image's own size;
            - ``C2`` .. ``C5``: the trunk's stages at strides 4, 8, 16, 32;
            - ``P2`` .. ``P6`` (FPN arm only): the pyramid, levels ``'0'``, ``'1'``, ``'2'``,
              ``'3'``, ``'pool'``; ``levels``: the names of the maps the RPN reads, finest first
              (the FPN's five, or ``('0',)``, which is ``C5``, for the single-level arm);
            - per level ``<name>``: ``anchors/<name>`` ``(h w A, 4)`` and ``objectness/<name>``
              ``(h w A,)`` logits, cell by cell, ``A`` anchors per cell;
            - ``proposals`` ``(R, 4)`` (top-k and NMS per level, the best ``rpn_post_nms_test``),
              ``proposal_scores`` ``(R,)`` probabilities, best first, ``proposal_levels`` ``(R,)``
              int64: the index in ``levels`` of the map whose anchor gave each proposal;
            - ``roi_levels`` ``(R,)`` int64: the map each proposal is pooled from by the level rule
              (``roi.multiscale.level_of_boxes`` with ``k_min = 2``, ``k_max = 5``,
              ``canonical_scale``): 0 .. 3 for P2 .. P5, all 0 for the single map;
            - ``mask_levels`` ``(D,)`` int64: the same for the detections' boxes;
            - ``detections``: :meth:`predict`'s dict; ``timings``: seconds per stage.
        """
        record: dict = {}
        record["detections"] = self._run(image, record)
        record["timings"] = dict(self.timings)
        return record

    def _run(self, image, record: dict | None) -> dict[str, np.ndarray]:
        """:meth:`predict`, filling ``record`` (when given) with the intermediates."""
        c = self.config
        image = as_rgb_float(image)
        H, W = image.shape[:2]
        t0 = time.perf_counter()
        x = self._padded_tensor(image)
        C = self.trunk(x)
        features = {"0": C[-1]} if self.fpn is None else self.fpn(C)
        t1 = time.perf_counter()
        objectness, deltas, anchors = self._rpn(features, x.shape[2:])  # strides: padded size
        proposed = self._proposal_records(objectness, deltas, anchors, (H, W),
                                          c.rpn_pre_nms_test, c.rpn_post_nms_test)[0]  # fmt: skip
        proposals = [proposed.boxes]
        t2 = time.perf_counter()
        cls_score, bbox_pred = self.box_head(self.box_roi_pool(features, proposals, [(H, W)]))
        roi_levels = self.box_roi_pool.last_levels
        out = postprocess_detections(cls_score, bbox_pred, proposals[0], (H, W), c.score_thresh,
                                     c.nms_thresh, c.detections_per_img, self.box_coder)  # fmt: skip
        t3 = time.perf_counter()
        logits = self.mask_head(self.mask_roi_pool(features, [out["boxes"]], [(H, W)]))
        mask_levels = self.mask_roi_pool.last_levels
        probabilities = mask_probabilities(logits, out["labels"])
        out["masks"] = paste_masks_in_image(probabilities, out["boxes"], (H, W), c.mask_threshold)
        self._clear()
        self.timings = {"features": t1 - t0, "proposals": t2 - t1, "heads": t3 - t2,
                        "masks": time.perf_counter() - t3}  # fmt: skip
        if record is not None:
            record.update(input=x, image_size=(H, W), image_mean=(0.5,) * 3, image_std=(1.0,) * 3,
                          levels=tuple(features))  # fmt: skip
            record.update({f"C{k + 2}": v for k, v in enumerate(C)})
            if self.fpn is not None:
                record.update({f"P{k + 2}": v for k, v in enumerate(features.values())})
            bounds = np.cumsum([0] + [o.shape[1] * o.shape[2] * o.shape[3] for o in objectness])
            for k, (name, o) in enumerate(zip(features, objectness, strict=True)):
                record[f"anchors/{name}"] = anchors[bounds[k] : bounds[k + 1]]
                record[f"objectness/{name}"] = o[0].transpose(1, 2, 0).reshape(-1)  # (h w A,)
            record.update(proposals=proposed.boxes, proposal_scores=proposed.scores,
                          proposal_levels=proposed.levels, roi_levels=roi_levels,
                          mask_levels=mask_levels)  # fmt: skip
        return out


def _clear_caches(module: Module) -> None:
    """Inference keeps nothing: drop every cache under ``module``."""
    for layer in _walk(module):
        layer._cache = None


def with_arm(config: MaskRCNNFPNConfig, arm: str) -> MaskRCNNFPNConfig:
    """``config`` with another arm (everything else equal, as the ablation needs)."""
    return replace(config, arm=arm)
