"""The Region Proposal Network (Faster R-CNN): proposals from the shared features, not from pixels.

At each cell of the feature map sit ``A`` anchors (``anchors.py``). A 3 x 3 convolution looks at the
cell's neighbourhood, then two 1 x 1 convolutions give, per anchor, an **objectness** logit (object or
not) and four **deltas** that move the anchor onto the object (``BoxCoder`` weights 1, 1, 1, 1).

Training (Faster R-CNN's rules, ``targets/rpn_targets.py``): 256 anchors per image, at most half
positive; binary cross-entropy on their objectness, smooth L1 on the positives' deltas. Inference: the
proposal layer (``proposal_layer.py``) decodes, clips, filters and suppresses. Outputs are laid out
location by location, ``A`` per location, matching the anchors' order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..nn import Conv2d, Module, ReLU, binary_cross_entropy_with_logits, smooth_l1
from ..nn.init import make_rng
from ..targets.rpn_targets import RPNTargets

__all__ = ["RPNHead", "RPNLoss", "rpn_loss", "flatten_rpn_outputs"]


class RPNHead(Module):
    """``RPNHead(in_channels, num_anchors)``: ``forward(features) -> (objectness (N, A, h, w),
    deltas (N, 4 A, h, w))``; ``backward((dobj, ddeltas)) -> dfeatures``. torchvision's names."""

    def __init__(self, in_channels: int, num_anchors: int, rng=None):
        rng = make_rng(rng)
        self.conv = Conv2d(in_channels, in_channels, 3, padding=1, rng=rng)
        self.relu = ReLU()
        self.cls_logits = Conv2d(in_channels, num_anchors, 1, rng=rng)
        self.bbox_pred = Conv2d(in_channels, 4 * num_anchors, 1, rng=rng)
        for layer in (self.cls_logits, self.bbox_pred):
            layer.weight.data *= 0.1  # start near "no object, no shift", as torchvision's std 0.01

    def _forward(self, features):
        t = self.relu(self.conv(features))
        return (self.cls_logits(t), self.bbox_pred(t)), features.shape

    def _backward(self, dout, cache):
        dobj, ddeltas = dout
        dt = self.cls_logits.backward(dobj) + self.bbox_pred.backward(ddeltas)
        return self.conv.backward(self.relu.backward(dt))


def flatten_rpn_outputs(
    objectness: np.ndarray, deltas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, A, h, w)``, ``(N, 4 A, h, w)`` -> ``(N, h w A)``, ``(N, h w A, 4)``: the anchors' order."""
    N, A, h, w = objectness.shape
    obj = objectness.transpose(0, 2, 3, 1).reshape(N, -1)
    d = deltas.reshape(N, A, 4, h, w).transpose(0, 3, 4, 1, 2).reshape(N, -1, 4)
    return obj, d


def _unflatten(dobj: np.ndarray, ddeltas: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`flatten_rpn_outputs`, for the gradients."""
    N, A, h, w = shape
    obj = dobj.reshape(N, h, w, A).transpose(0, 3, 1, 2)
    d = ddeltas.reshape(N, h, w, A, 4).transpose(0, 3, 4, 1, 2).reshape(N, 4 * A, h, w)
    return np.ascontiguousarray(obj), np.ascontiguousarray(d)


class RPNLoss(NamedTuple):
    objectness: float
    box_regression: float
    dobjectness: np.ndarray  # (N, A, h, w)
    ddeltas: np.ndarray  # (N, 4 A, h, w)


def rpn_loss(objectness, deltas, targets: list[RPNTargets], beta: float = 1.0 / 9) -> RPNLoss:
    """The RPN's two losses over the sampled anchors of every image (torchvision's normalisation:
    BCE averaged over the sampled anchors; smooth L1 summed over the positives and divided by the
    number of sampled anchors too).

    Args:
        objectness: ``(N, A, h, w)`` logits; ``deltas``: ``(N, 4 A, h, w)``.
        targets: one :class:`RPNTargets` per image, over the same ``h w A`` anchors.
    """
    obj, d = flatten_rpn_outputs(objectness, deltas)
    pos = np.stack([t.sampled_pos for t in targets])  # (N, h w A)
    sampled = pos | np.stack([t.sampled_neg for t in targets])
    labels = np.stack([t.labels for t in targets]).clip(0, 1)
    count = max(int(sampled.sum()), 1)
    obj_loss, dobj = binary_cross_entropy_with_logits(obj, labels, weights=sampled, reduction="sum")
    target_deltas = np.stack([t.deltas for t in targets])  # (N, h w A, 4)
    box_loss, dd = smooth_l1(d, target_deltas, beta, weights=pos[..., None], reduction="sum")
    dobj, dd = _unflatten(dobj / count, dd / count, objectness.shape)
    return RPNLoss(
        obj_loss / count, box_loss / count, dobj.astype(objectness.dtype), dd.astype(deltas.dtype)
    )
