"""Stage 1, R-CNN (Girshick et al., 2014): region proposals, each warped and classified on its own.

    image -> selective search (~2000 boxes on photos; a few dozen on flat-coloured shapes)
          -> warp every box to ``crop_size`` pixels (with context padding)
          -> a small CNN per crop -> features of its last hidden layer
          -> one linear SVM per class -> class-specific ridge box regression -> per-class NMS

Every crop goes through the whole CNN separately, which is exactly the cost Fast R-CNN removes by
sharing one CNN pass per image. The model here is assembly only: proposals, warping, the network
core, the SVM head and the ridge regressor each live in their own module. Training is in
``training/rcnn.py``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..boxes import batched_nms, clip_boxes_to_image
from ..conventions import as_rgb_uint8
from ..heads.box_regression import RidgeBoxRegressor
from ..heads.svm import SVMHead
from ..nn import (
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    WeightsError,
    load_weights,
    save_weights,
)
from ..nn.init import make_rng
from ..proposals.selective_search import selective_search
from ..roi.warp import warp_regions
from .saved_model import check_parameter_shapes, config_from_record, validate_config

__all__ = ["RCNNConfig", "RCNN", "DEFAULT_WEIGHTS"]

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "rcnn_shapes.npz"


@dataclass(frozen=True)
class RCNNConfig:
    """R-CNN's numbers. The paper's values are noted; ours are scaled to 128 x 128 shapes."""

    num_classes: int = 3
    crop_size: int = 32  # paper: 227
    context_padding: float = 2.0  # paper: 16 of 227 pixels; the same share of 32
    warp_method: str = "warp"  # the paper's anisotropic warp, its best
    channels: tuple[int, ...] = (16, 32, 64)
    hidden: int = 128  # size of the feature vector the SVMs see
    proposal_mode: str = "fast"
    svm_c: float = 1.0
    nms_thresh: float = 0.3  # paper: 0.3
    score_thresh: float = -1.0  # SVM margin: keep everything not clearly negative
    detections_per_img: int = 100

    def __post_init__(self):
        validate_config(self)  # types and ranges, before anything is built


def build_cnn(config: RCNNConfig, rng=None) -> tuple[Sequential, Sequential, Linear]:
    """The CNN: ``(trunk, classifier)``; ``trunk`` maps ``(N, 3, S, S)`` crops to ``(N, hidden)``
    features (after ReLU), ``classifier`` maps features to ``K + 1`` class scores for fine-tuning.
    Returns ``(whole network, trunk, classifier)``."""
    rng = make_rng(rng)
    layers = []
    c_in = 3
    for i, c_out in enumerate(config.channels):
        layers += [
            Conv2d(c_in, c_out, 3, padding=1, rng=rng, input_grad=i > 0),
            ReLU(),
            MaxPool2d(2),
        ]
        c_in = c_out
    side = config.crop_size // 2 ** len(config.channels)
    trunk = Sequential(
        *layers, Flatten(), Linear(c_in * side * side, config.hidden, rng=rng), ReLU()
    )
    classifier = Linear(config.hidden, config.num_classes + 1, rng=rng)
    return Sequential(trunk, classifier), trunk, classifier


class RCNN:
    """R-CNN: ``predict(image) -> {"boxes", "labels", "scores"}`` like torchvision's detectors.

    Args:
        config: the numbers (:class:`RCNNConfig`).
        rng: seed or generator of the CNN's initialisation.
    """

    def __init__(self, config: RCNNConfig = RCNNConfig(), rng=None):
        self.config = config
        self.network, self.trunk, self.classifier = build_cnn(config, rng)
        self.svm: SVMHead | None = None
        self.regressor = RidgeBoxRegressor(config.num_classes)
        self.timings: dict[str, float] = {}

    # --- the pipeline, step by step ------------------------------------------------------------

    def propose(self, image) -> np.ndarray:
        """Selective-search boxes ``(R, 4)``, ranked."""
        return selective_search(image, mode=self.config.proposal_mode)

    def warp(self, image, boxes) -> np.ndarray:
        """Crops as a network input: ``(R, 3, S, S)`` float32."""
        c = self.config
        crops = warp_regions(image, boxes, c.crop_size, c.context_padding, c.warp_method)
        return np.ascontiguousarray(crops.transpose(0, 3, 1, 2))

    def features(self, crops: np.ndarray, batch: int = 256) -> np.ndarray:
        """``(R, 3, S, S)`` crops -> ``(R, hidden)`` features of the last hidden layer (the CNN runs
        once per crop: R-CNN's cost)."""
        if len(crops) == 0:
            return np.zeros((0, self.config.hidden), np.float32)
        parts = [self.trunk(crops[i : i + batch]) for i in range(0, len(crops), batch)]
        self.trunk._cache = None  # inference only: nothing to keep for a backward
        return np.concatenate(parts)

    def detect(self, image, boxes, features) -> dict[str, np.ndarray]:
        """SVM scores, box regression and per-class NMS for proposals with known features."""
        if self.svm is None:
            raise RuntimeError("RCNN has no SVMs yet: train it or load weights (RCNN.pretrained())")
        c = self.config
        H, W = np.asarray(image).shape[:2]
        scores = self.svm.scores(features)[:, 1:]  # (R, K)
        R, K = scores.shape
        labels = np.tile(np.arange(1, K + 1), R)
        flat = scores.reshape(-1)
        keep = flat > c.score_thresh
        which = np.repeat(np.arange(R), K)[keep]
        labels, flat = labels[keep], flat[keep]
        refined = self.regressor.predict(features[which], boxes[which], labels)
        refined = clip_boxes_to_image(refined, (H, W))
        ok = (refined[:, 2] > refined[:, 0]) & (refined[:, 3] > refined[:, 1])
        refined, labels, flat = refined[ok], labels[ok], flat[ok]
        kept = batched_nms(refined, flat, labels, c.nms_thresh)[: c.detections_per_img]
        return {
            "boxes": refined[kept].astype(np.float32),
            "labels": labels[kept].astype(np.int64),
            "scores": flat[kept].astype(np.float32),
        }

    def predict(self, image) -> dict[str, np.ndarray]:
        """Detections for one ``H x W x 3`` image; the time of each step goes to ``self.timings``."""
        image = as_rgb_uint8(image)
        t0 = time.perf_counter()
        boxes = self.propose(image)
        t1 = time.perf_counter()
        crops = self.warp(image, boxes)
        t2 = time.perf_counter()
        feats = self.features(crops)
        t3 = time.perf_counter()
        out = self.detect(image, boxes, feats)
        t4 = time.perf_counter()
        self.timings = {
            "proposals": t1 - t0,
            "warping": t2 - t1,
            "cnn": t3 - t2,
            "svm+regression": t4 - t3,
        }
        return out

    # --- weights --------------------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        if self.svm is None or self.regressor.weights is None:
            raise RuntimeError("only a trained RCNN can be saved")
        state = {f"cnn.{k}": v for k, v in self.network.state_dict().items()}
        state.update(self.svm.state())
        state["regressor.weight"] = self.regressor.weights.astype(np.float32)
        return state

    def save(self, path, extra: dict | None = None) -> Path:
        """Save weights and config atomically as ``.npz`` (``extra`` goes into the config record)."""
        return save_weights(
            path, self.state(), {"model": "rcnn", **asdict(self.config), **(extra or {})}
        )

    @classmethod
    def load(cls, path) -> RCNN:
        """An R-CNN from a file written by :meth:`save`: its config is validated before the CNN is
        built, and every array (``cnn.*``, ``svm.weight`` ``(hidden, K)``, ``svm.bias`` ``(K,)``,
        ``regressor.weight`` ``(K, hidden + 1, 4)``) must be present with exactly its shape
        (``WeightsError`` naming it otherwise)."""
        state, config = load_weights(path)
        if config.get("model") != "rcnn":
            raise WeightsError(f"{path}: holds a {config.get('model')!r} model, not an R-CNN")
        model = cls(config_from_record(RCNNConfig, config, path))
        c = model.config
        own = {f"cnn.{k}": v.shape for k, v in model.network.state_dict().items()}
        own.update({"svm.weight": (c.hidden, c.num_classes), "svm.bias": (c.num_classes,),
                    "regressor.weight": (c.num_classes, c.hidden + 1, 4)})  # fmt: skip
        check_parameter_shapes(own, state, path)
        model.network.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("cnn.")})
        model.svm = SVMHead.from_state(state)
        model.regressor.weights = state["regressor.weight"].astype(np.float64)
        return model

    @classmethod
    def pretrained(cls, path=None) -> RCNN:
        """The shipped model (``data/rcnn_shapes.npz``, made by the command recorded in
        ``data/README.md``)."""
        return cls.load(path or DEFAULT_WEIGHTS)
