"""The box head of Fast, Faster and Mask R-CNN: pooled RoI features -> class scores and box deltas.

    (K, C, P, P) RoI features -> flatten -> fc -> ReLU -> fc -> ReLU -> cls_score: (K, K_cls + 1)
                                                                    -> bbox_pred: (K, 4 (K_cls + 1))

One network does both tasks, trained with Fast R-CNN's multi-task loss::

    L = L_cls(p, u) + [u >= 1] L_loc(t^u, v)

softmax cross-entropy over the sampled RoIs, plus smooth L1 between the deltas predicted *for the
true class u* and the targets, only for foreground RoIs, summed and divided by the number of sampled
RoIs (torchvision's normalisation). Names follow torchvision's ``TwoMLPHead`` and
``FastRCNNPredictor`` (``fc6``, ``fc7``, ``cls_score``, ``bbox_pred``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..nn import Flatten, Linear, Module, ReLU, Sequential, smooth_l1, softmax_cross_entropy
from ..nn.init import make_rng

__all__ = ["BoxHead", "FastRCNNLoss", "fast_rcnn_loss"]


class BoxHead(Module):
    """``BoxHead(in_features, hidden, num_classes)``: ``forward(x (K, C, P, P)) -> (cls_score, bbox_pred)``;
    ``backward((dcls, dbox)) -> dx``. ``num_classes`` counts the object classes; background is added."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, rng=None):
        rng = make_rng(rng)
        self.fc6 = Sequential(Flatten(), Linear(in_features, hidden, rng=rng), ReLU())
        self.fc7 = Sequential(Linear(hidden, hidden, rng=rng), ReLU())
        self.cls_score = Linear(hidden, num_classes + 1, rng=rng)
        self.bbox_pred = Linear(hidden, 4 * (num_classes + 1), rng=rng)
        # small initial deltas, as torchvision's predictor starts near the proposals
        self.bbox_pred.weight.data *= 0.1

    def _forward(self, x):
        h = self.fc7(self.fc6(x))
        return (self.cls_score(h), self.bbox_pred(h)), x.shape  # the sub-layers keep their caches

    def _backward(self, dout, cache):
        dcls, dbox = dout
        dh = self.cls_score.backward(dcls) + self.bbox_pred.backward(dbox)  # both tasks share h
        return self.fc6.backward(self.fc7.backward(dh))


class FastRCNNLoss(NamedTuple):
    """The two terms, and their gradients with respect to the head's two outputs."""

    classification: float
    box_regression: float
    dcls: np.ndarray  # (K, K_cls + 1)
    dbox: np.ndarray  # (K, 4 (K_cls + 1))


def fast_rcnn_loss(
    cls_score, bbox_pred, labels, box_targets, beta: float = 1.0 / 9
) -> FastRCNNLoss:
    """Fast R-CNN's multi-task loss over ``K`` sampled RoIs.

    Args:
        cls_score: ``(K, K_cls + 1)`` logits; ``bbox_pred``: ``(K, 4 (K_cls + 1))`` deltas.
        labels: ``(K,)`` classes, 0 for background.
        box_targets: ``(K, 4)`` encoded targets (meaningful for foreground RoIs only).
        beta: smooth L1's switch point (1 in the paper, 1/9 in torchvision's detectors).

    Returns:
        :class:`FastRCNNLoss`; an empty batch gives zeros, not NaN.
    """
    labels = np.asarray(labels, dtype=np.int64)
    K = len(labels)
    cls_loss, dcls = softmax_cross_entropy(cls_score, labels)
    pred = np.asarray(bbox_pred)
    pred = pred.reshape(K, pred.shape[1] // 4, 4)  # (K, K_cls + 1, 4)
    fg = np.flatnonzero(labels > 0)
    picked = pred[fg, labels[fg]]  # the deltas predicted for the true class
    box_loss, dpicked = smooth_l1(
        picked, np.asarray(box_targets, pred.dtype)[fg], beta, reduction="sum"
    )
    scale = 1.0 / max(K, 1)
    dbox = np.zeros_like(pred)
    dbox[fg, labels[fg]] = dpicked * scale
    return FastRCNNLoss(cls_loss, box_loss * scale, dcls, dbox.reshape(np.shape(bbox_pred)))
