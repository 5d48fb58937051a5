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

__all__ = ["RPNHead", "RPNLoss", "rpn_loss", "rpn_loss_over_levels", "flatten_rpn_outputs"]


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


def _rpn_loss_flat(obj, d, targets: list[RPNTargets], beta: float):
    """The two losses and their gradients on flattened outputs ``(N, T)``, ``(N, T, 4)``."""
    pos = np.stack([t.sampled_pos for t in targets])  # (N, T)
    sampled = pos | np.stack([t.sampled_neg for t in targets])
    labels = np.stack([t.labels for t in targets]).clip(0, 1)
    count = max(int(sampled.sum()), 1)
    obj_loss, dobj = binary_cross_entropy_with_logits(obj, labels, weights=sampled, reduction="sum")
    target_deltas = np.stack([t.deltas for t in targets])  # (N, T, 4)
    box_loss, dd = smooth_l1(d, target_deltas, beta, weights=pos[..., None], reduction="sum")
    return obj_loss / count, box_loss / count, dobj / count, dd / count


def rpn_loss(objectness, deltas, targets: list[RPNTargets], beta: float = 1.0 / 9) -> RPNLoss:
    """The RPN's two losses over the sampled anchors of every image (torchvision's normalisation:
    BCE averaged over the sampled anchors; smooth L1 summed over the positives and divided by the
    number of sampled anchors too).

    Args:
        objectness: ``(N, A, h, w)`` logits; ``deltas``: ``(N, 4 A, h, w)``.
        targets: one :class:`RPNTargets` per image, over the same ``h w A`` anchors.
    """
    obj, d = flatten_rpn_outputs(objectness, deltas)
    obj_loss, box_loss, dobj, dd = _rpn_loss_flat(obj, d, targets, beta)
    dobj, dd = _unflatten(dobj, dd, objectness.shape)
    return RPNLoss(obj_loss, box_loss, dobj.astype(objectness.dtype), dd.astype(deltas.dtype))


class RPNLevelsLoss(NamedTuple):
    objectness: float
    box_regression: float
    dobjectness: list[np.ndarray]  # per level, (N, A, h_l, w_l)
    ddeltas: list[np.ndarray]  # per level, (N, 4 A, h_l, w_l)


def rpn_loss_over_levels(
    objectness, deltas, targets: list[RPNTargets], beta: float = 1.0 / 9
) -> RPNLevelsLoss:
    """:func:`rpn_loss` over a pyramid: one head's outputs on every level, one loss.

    Each level's outputs are flattened (location by location, ``A`` per location) and the levels
    concatenated in order, which is the order of the anchors of ``AnchorGenerator`` over the same
    maps; the loss is :func:`rpn_loss`'s on the concatenation (one normalisation over all levels, as
    torchvision), and the gradient is split back per level and unflattened.

    Args:
        objectness: a list of ``L`` arrays ``(N, A, h_l, w_l)``; ``deltas``: ``L`` arrays
            ``(N, 4 A, h_l, w_l)``.
        targets: one :class:`RPNTargets` per image over the ``sum_l h_l w_l A`` anchors.

    Returns:
        :class:`RPNLevelsLoss`, the gradients as lists by level, shaped as the inputs.
    """
    if len(objectness) != len(deltas) or not len(objectness):
        raise ValueError(
            f"objectness and deltas must be lists of one array per level, of one length; got "
            f"{len(objectness)} and {len(deltas)}"
        )
    flat = [flatten_rpn_outputs(o, d) for o, d in zip(objectness, deltas, strict=True)]
    sizes = [f[0].shape[1] for f in flat]
    obj = np.concatenate([f[0] for f in flat], axis=1)  # (N, T)
    d = np.concatenate([f[1] for f in flat], axis=1)  # (N, T, 4)
    total = np.stack([t.labels for t in targets]).shape[1]
    if total != obj.shape[1]:
        raise ValueError(f"targets cover {total} anchors; the levels' outputs {obj.shape[1]}")
    obj_loss, box_loss, dobj, dd = _rpn_loss_flat(obj, d, targets, beta)
    cuts = np.cumsum(sizes)[:-1]
    dobjs, dds = [], []
    pieces = zip(np.split(dobj, cuts, 1), np.split(dd, cuts, 1), strict=True)
    for lv, (g_obj, g_d) in enumerate(pieces):
        a, b = _unflatten(g_obj, g_d, objectness[lv].shape)  # (N, A, h, w), (N, 4 A, h, w)
        dobjs.append(a.astype(objectness[lv].dtype))
        dds.append(b.astype(deltas[lv].dtype))
    return RPNLevelsLoss(obj_loss, box_loss, dobjs, dds)
