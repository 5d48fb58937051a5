"""Mask R-CNN's mask branch: RoIAlign features -> one ``M x M`` binary mask per class.

    (K, C, 14, 14) -> [3x3 conv -> ReLU] x 4 -> 2x2 deconv, stride 2 -> ReLU -> 1x1 conv
                   -> (K, K_cls, 28, 28) logits

The head is a *small fully convolutional network run on every RoI*. It keeps the spatial layout of
the RoI's features all the way to the output (no ``fc`` flattening, unlike the box head), so pixel
``(i, j)`` of the predicted mask is computed from the features around position ``(i, j)`` of the
RoI. That is why RoIAlign matters here: a mask is a per-pixel prediction, and the rounding of
RoIPool would shift it by up to a feature cell.

The paper's key decoupling: the head predicts **one binary mask per class**, each pixel scored by
its own sigmoid, and the loss reads only the channel of the RoI's ground-truth class. Classes do
not compete for a pixel (no softmax across classes, as an FCN for semantic segmentation would
have); deciding *which* class the object is stays the box head's job, and the mask head only
answers "which pixels belong to it". At inference the detector's predicted class picks the channel.
``class_agnostic=True`` predicts a single mask for every class instead, which the paper found
almost as good (a few tenths of AP lower).

Names follow torchvision (``MaskRCNNHeads``: ``mask_fcn1..4``; ``MaskRCNNPredictor``:
``conv5_mask``, ``mask_fcn_logits``). One difference by default: torchvision's predictor also has a
channel for the background class, which no loss ever reads; here the ``num_classes`` channels are
the object classes, and label ``l`` (``1..num_classes``, 0 being background as everywhere in the
package) reads channel ``l - 1``. ``background_channel=True`` gives torchvision's layout, to load
its weights: ``num_classes + 1`` channels (91 for COCO's 90), label ``l`` reading channel ``l``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..nn import Conv2d, ConvTranspose2d, Module, ReLU, binary_cross_entropy_with_logits
from ..nn.init import make_rng

__all__ = ["MaskHead", "MaskLoss", "mask_loss", "mask_probabilities"]


class MaskHead(Module):
    """``MaskHead(in_channels, num_classes, layers=(64, 64, 64, 64), class_agnostic=False, rng=None,
    background_channel=False)``.

    ``forward(x)``: ``x`` ``(K, C, S, S)`` float RoIAlign features (``S = 14`` in Mask R-CNN) ->
    logits ``(K, num_classes, 2 S, 2 S)``, ``(K, num_classes + 1, 2 S, 2 S)`` with
    ``background_channel``, or ``(K, 1, 2 S, 2 S)`` if ``class_agnostic``.
    ``backward(dlogits)`` -> ``dx`` ``(K, C, S, S)``. ``K = 0`` gives empty arrays of those shapes.

    Args:
        in_channels: ``C``, the channels of the RoI features.
        num_classes: object classes, background excluded; one mask channel each.
        layers: output channels of the 3x3 convolutions ``mask_fcn1..N`` (the paper: 4 x 256).
            The transposed convolution ``conv5_mask`` keeps the last width.
        class_agnostic: one mask for all classes.
        rng: generator or seed of the initialisation (float32 parameters).
        background_channel: torchvision's layout, an unused channel 0 before the classes (pass
            the same flag to :func:`mask_loss` and :func:`mask_probabilities`).
    """

    def __init__(
        self,
        in_channels,
        num_classes,
        layers=(64, 64, 64, 64),
        class_agnostic=False,
        rng=None,
        background_channel=False,
    ):
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1 (object classes); got {num_classes}")
        if class_agnostic and background_channel:
            raise ValueError("class_agnostic and background_channel exclude each other")
        layers = tuple(int(w) for w in layers)
        if not layers or min(layers) < 1:
            raise ValueError(
                f"layers must be a non-empty sequence of positive widths; got {layers}"
            )
        rng = make_rng(rng)
        self.num_classes, self.class_agnostic = int(num_classes), bool(class_agnostic)
        self.background_channel = bool(background_channel)
        order: list[Module] = []
        width = int(in_channels)
        for i, out in enumerate(layers, start=1):
            conv = Conv2d(width, out, 3, padding=1, rng=rng)
            setattr(self, f"mask_fcn{i}", conv)  # torchvision's parameter names
            order += [conv, ReLU()]
            width = out
        self.conv5_mask = ConvTranspose2d(width, width, 2, stride=2, rng=rng)  # 2x upsampling
        channels = 1 if class_agnostic else self.num_classes + self.background_channel
        self.mask_fcn_logits = Conv2d(width, channels, 1, rng=rng)
        # forward order in a plain list (not a Module attribute, so names stay torchvision's)
        self._layers = order + [self.conv5_mask, ReLU(), self.mask_fcn_logits]

    def _forward(self, x):
        for layer in self._layers:
            x = layer.forward(x)
        return x, True  # the layers keep their own caches

    def _backward(self, dout, cache):
        for layer in reversed(self._layers):
            dout = layer.backward(dout)
        return dout


def _check_labels(labels, K: int, channels: int, background_channel: bool = False) -> np.ndarray:
    """``(K,)`` labels -> the mask channel of each: ``label - 1``, or 0 for a single channel, or
    ``label`` itself when channel 0 is the background's."""
    labels = np.asarray(labels)
    if labels.shape != (K,):
        raise ValueError(f"labels must have shape ({K},), one per RoI; got {labels.shape}")
    if K and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers (classes 1..num_classes); got {labels.dtype}")
    labels = labels.astype(np.int64)
    if background_channel:
        if channels < 2:
            raise ValueError(
                f"with background_channel the mask logits need >= 2 channels; got {channels}"
            )
        bad = (labels < 1) | (labels > channels - 1)
        if bad.any():
            raise ValueError(
                f"labels must be in 1..{channels - 1} (foreground classes; channel 0 of the "
                f"{channels} is the background's); got {int(labels[np.flatnonzero(bad)[0]])}"
            )
        return labels
    top = np.iinfo(np.int64).max if channels == 1 else channels
    bad = (labels < 1) | (labels > top)
    if bad.any():
        allowed = ">= 1" if channels == 1 else f"in 1..{channels}"
        raise ValueError(
            f"labels must be {allowed} (foreground classes; the mask logits have {channels} "
            f"channel(s)); got {int(labels[np.flatnonzero(bad)[0]])}"
        )
    return np.zeros(K, np.int64) if channels == 1 else labels - 1


def _check_logits(mask_logits) -> np.ndarray:
    x = np.asarray(mask_logits)
    if x.ndim != 4:
        raise ValueError(f"mask_logits must have shape (K, C_m, M, M); got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"mask_logits must be float32 or float64; got dtype {x.dtype}")
    return x


class MaskLoss(NamedTuple):
    """The mask loss and its gradient with respect to the mask logits."""

    loss: float
    dlogits: np.ndarray  # (K, C_m, M, M), zero outside each RoI's ground-truth channel


def mask_loss(mask_logits, labels, mask_targets, background_channel=False) -> MaskLoss:
    """Mask R-CNN's ``L_mask``: mean per-pixel binary cross-entropy on the true class's mask only.

    ``L = 1 / (K M^2) sum_k sum_{i,j} BCE(z[k, c_k, i, j], t[k, i, j])`` with ``c_k`` the channel of
    RoI ``k``'s ground-truth class (torchvision's ``maskrcnn_loss``). The other channels get no
    gradient: a RoI teaches only its own class's mask.

    Args:
        mask_logits: ``(K, C_m, M, M)`` float logits of the ``K`` positive RoIs.
        labels: ``(K,)`` int ground-truth classes in ``1..C_m``, reading channel ``label - 1``; when
            ``C_m == 1`` (class-agnostic head) every RoI reads channel 0.
        mask_targets: ``(K, M, M)`` float targets in ``[0, 1]``
            (:func:`~rcnn_from_scratch.targets.mask_targets.project_masks_on_boxes`).
        background_channel: channel 0 is the background's (torchvision's layout): labels lie in
            ``1..C_m - 1`` and label ``l`` reads channel ``l``.

    Returns:
        :class:`MaskLoss`; ``dlogits`` has the shape and dtype of ``mask_logits``. ``K = 0`` gives
        loss 0.0 and an empty gradient, never NaN.

    Raises:
        ValueError: on shape mismatches, labels out of range, or targets outside ``[0, 1]``.
    """
    z = _check_logits(mask_logits)
    K, C, Mh, Mw = z.shape
    t = np.asarray(mask_targets)
    if t.shape != (K, Mh, Mw):
        raise ValueError(
            f"mask_targets must have shape (K, M, M) = {(K, Mh, Mw)} to match mask_logits "
            f"{z.shape}; got {t.shape}"
        )
    channel = _check_labels(labels, K, C, background_channel)
    t = t.astype(z.dtype, copy=False)
    if t.size and not (np.all(np.isfinite(t)) and t.min() >= 0 and t.max() <= 1):
        raise ValueError("mask_targets must lie in [0, 1]")
    dlogits = np.zeros_like(z)
    if K == 0:
        return MaskLoss(0.0, dlogits)
    rows = np.arange(K)
    loss, dpicked = binary_cross_entropy_with_logits(z[rows, channel], t)  # mean over K M M
    dlogits[rows, channel] = dpicked
    return MaskLoss(loss, dlogits)


def mask_probabilities(mask_logits, labels, background_channel=False) -> np.ndarray:
    """Soft masks of detections, for inference: ``sigmoid`` of each detection's class channel.

    Args:
        mask_logits: ``(D, C_m, M, M)`` float logits of ``D`` detections.
        labels: ``(D,)`` int predicted classes in ``1..C_m`` (channel ``label - 1``); any label
            ``>= 1`` when ``C_m == 1`` (class-agnostic, channel 0).
        background_channel: channel 0 is the background's (torchvision's ``maskrcnn_inference``):
            labels in ``1..C_m - 1``, label ``l`` reads channel ``l``.

    Returns:
        ``(D, M, M)`` probabilities in ``[0, 1]``, the dtype of ``mask_logits``, in the RoI's frame
        (pasting into the image, and thresholding at 0.5, happen after).
    """
    z = _check_logits(mask_logits)
    channel = _check_labels(labels, len(z), z.shape[1], background_channel)
    picked = z[np.arange(len(z)), channel]
    return (0.5 * (1.0 + np.tanh(0.5 * picked))).astype(z.dtype, copy=False)  # stable sigmoid
